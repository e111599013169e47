data "google_project" "this" {
  project_id = var.project_id
}

# ---------------------------------------------------------------------------------------------------
# APIs
# ---------------------------------------------------------------------------------------------------

resource "google_project_service" "enabled" {
  for_each = var.enable_apis ? toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]) : toset([])

  service = each.value
  # Destroying this configuration must not switch APIs off for everything else in the project.
  disable_on_destroy = false
}

# ---------------------------------------------------------------------------------------------------
# Source: one zip per function, built by `./deploy.sh build` into dist/<name>.zip (deploy/bundle.py:
# that function's main.py, common/, requirements.txt, by allow-list, byte-identical on every machine).
# The object name carries the zip's MD5, so changed code uploads a new object and redeploys only the
# functions whose bundle changed.
# ---------------------------------------------------------------------------------------------------

resource "google_storage_bucket" "source" {
  name                        = var.source_bucket_name != "" ? var.source_bucket_name : "${var.project_id}-${var.name_prefix}function-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Only zips live here, and Terraform replaces them itself.
  force_destroy = true

  versioning {
    enabled = true
  }

  lifecycle_rule {
    # Superseded bundles are kept a week (a rollback can rebuild from them), then deleted.
    condition {
      days_since_noncurrent_time = 7
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_storage_bucket_object" "bundle" {
  for_each = local.functions

  name         = "${each.key}-${filemd5(each.value.bundle)}.zip"
  bucket       = google_storage_bucket.source.name
  source       = each.value.bundle
  content_type = "application/zip"
}

# ---------------------------------------------------------------------------------------------------
# Identities
# ---------------------------------------------------------------------------------------------------

# What each function runs as: one account per function. Its grants are read access to the secrets
# that function's code reads (secrets.tf), and for admin alone, reading the scheduler job's state for
# its health check (below); it needs no project role to log to stdout.
resource "google_service_account" "fn" {
  for_each = local.functions

  account_id   = "${var.name_prefix}fn-${replace(each.key, "_", "-")}"
  display_name = "Document chat ${each.key} (runtime)"
  description  = "Runtime identity of the document-chat ${each.key} function."

  depends_on = [google_project_service.enabled]
}

# What Cloud Scheduler signs its OIDC token as. Its only grant is run.invoker on registry-refresh
# (functions.tf), and the function checks for this email in the token.
resource "google_service_account" "scheduler" {
  account_id   = "${var.name_prefix}registry-scheduler"
  display_name = "Document chat registry scheduler"
  description  = "Identity Cloud Scheduler uses to call the registry-refresh function."

  depends_on = [google_project_service.enabled]
}

# GET /admin/health reads the registry refresh job's state (cloudscheduler.jobs.get). Cloud Scheduler
# has no per-job IAM, so this is the project-level viewer role, for the admin function's account only.
resource "google_project_iam_member" "admin_scheduler_viewer" {
  count = contains(keys(local.functions), "admin") ? 1 : 0

  project = var.project_id
  role    = "roles/cloudscheduler.viewer"
  member  = "serviceAccount:${google_service_account.fn["admin"].email}"
}
