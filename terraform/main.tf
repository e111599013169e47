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
# Source: the repository root, zipped. Every function gets the same archive and picks its own file
# with GOOGLE_FUNCTION_SOURCE. The object name carries the archive's hash, so a code change uploads
# a new object and redeploys every function; an unchanged tree changes nothing.
# ---------------------------------------------------------------------------------------------------

data "archive_file" "source" {
  type        = "zip"
  source_dir  = "${path.module}/.."
  output_path = "${path.module}/build/source.zip"
  # Same bytes on every machine, whatever the umask.
  output_file_mode = "0644"

  # Patterns are matched against paths relative to the repository root (doublestar globs).
  excludes = [
    ".git",
    ".ci",
    ".venv",
    ".data",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "tests",
    "local",
    "terraform",
    "**/__pycache__",
    "**/*.pyc",
    # Local credentials never leave the machine.
    "**/.env",
    "**/.env.*",
  ]
}

resource "google_storage_bucket" "source" {
  name                        = var.source_bucket_name != "" ? var.source_bucket_name : "${var.project_id}-${var.name_prefix}function-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Only zips live here, and Terraform replaces them itself.
  force_destroy = true

  depends_on = [google_project_service.enabled]
}

resource "google_storage_bucket_object" "source" {
  name         = "source-${data.archive_file.source.output_sha256}.zip"
  bucket       = google_storage_bucket.source.name
  source       = data.archive_file.source.output_path
  content_type = "application/zip"
}

# ---------------------------------------------------------------------------------------------------
# Identities
# ---------------------------------------------------------------------------------------------------

# What the functions run as. Its only grants are read access to this deployment's secrets
# (secrets.tf); it needs no project role to log to stdout.
resource "google_service_account" "runtime" {
  account_id   = "${var.name_prefix}functions-runtime"
  display_name = "Document chat functions (runtime)"
  description  = "Runtime identity of the document-chat Cloud Run functions."

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
