terraform {
  # 1.11 is the first release with write-only arguments, which keep the secret values out of state
  # (google_secret_manager_secret_version.secret_data_wo).
  required_version = ">= 1.11"

  required_providers {
    google = {
      source = "hashicorp/google"
      # Field names checked against the 7.x provider. 8.0 changes secret_data_wo_version to a string;
      # the number we pass converts, but review the upgrade guide before widening this.
      version = "~> 7.0"
    }
  }
}

provider "google" {
  project        = var.project_id
  region         = var.region
  default_labels = var.labels
}
