# One Secret Manager secret per secret environment variable, e.g. SUPABASE_SECRET_KEY is stored as
# "<prefix>supabase-secret-key". Values are written with the write-only argument (Terraform >= 1.11),
# so they appear in neither the plan nor the state; bump var.secrets_version after changing one.

resource "google_secret_manager_secret" "app" {
  for_each = local.secret_names

  secret_id = "${var.name_prefix}${lower(replace(each.key, "_", "-"))}"

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "app" {
  for_each = local.secret_names

  secret                 = google_secret_manager_secret.app[each.key].id
  secret_data_wo         = local.secret_values[each.key]
  secret_data_wo_version = var.secrets_version

  lifecycle {
    # A new version is created, the functions move to it, and only then is the old one destroyed,
    # so no instance ever starts against a destroyed version.
    create_before_destroy = true
  }
}

# Per secret, per function: the account of a function may read exactly the secrets its code reads.
resource "google_secret_manager_secret_iam_member" "function" {
  for_each = local.secret_grants

  secret_id = google_secret_manager_secret.app[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.fn[each.value.function].email}"
}
