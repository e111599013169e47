# The six Cloud Run functions (gen2). One bundle each, one resource block; each.key is the entry point
# and the folder under functions/, each.value.name the Cloud Run service name.

resource "google_cloudfunctions2_function" "fn" {
  for_each = local.functions

  name        = each.value.name
  location    = var.region
  description = "Document chat: ${each.key} (functions/${each.key}/main.py)"

  build_config {
    runtime     = "python312"
    entry_point = each.value.entry_point
    environment_variables = {
      # The buildpack serves this file instead of ./main.py (it becomes FUNCTION_SOURCE at run time).
      # The bundle keeps functions/<name>/main.py at its repository path because main.py puts the
      # folder two levels up (the bundle root, which holds common/) on sys.path.
      GOOGLE_FUNCTION_SOURCE = each.value.source_file
    }
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.bundle[each.key].name
      }
    }
  }

  service_config {
    available_memory = each.value.memory
    # More than one request per instance needs at least one whole vCPU; at concurrency 1 the CPU
    # follows from the memory size.
    available_cpu                    = each.value.concurrency > 1 ? "1" : null
    max_instance_request_concurrency = each.value.concurrency
    min_instance_count               = each.value.min_instances
    max_instance_count               = each.value.max_instances
    timeout_seconds                  = each.value.timeout
    # Every function is reachable from the internet; which callers get through is decided by IAM
    # below (allUsers for the user-facing ones, the scheduler's account for registry-refresh).
    # Cloud Scheduler does not count as internal traffic, so ALLOW_INTERNAL_ONLY would block it.
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.fn[each.key].email
    environment_variables          = local.function_env[each.key]

    dynamic "secret_environment_variables" {
      # Only the secrets this function's code reads (locals.tf).
      for_each = local.function_secrets[each.key]
      iterator = env
      content {
        key        = env.value
        project_id = var.project_id
        secret     = google_secret_manager_secret.app[env.value].secret_id
        # Pinned to the version Terraform wrote, not "latest": a rotation (var.secrets_version)
        # changes this number and so rolls out a new revision instead of waiting for cold starts.
        version = google_secret_manager_secret_version.app[env.value].version
      }
    }
  }

  lifecycle {
    precondition {
      # A slow turn must be ended (and recorded) by the function, not cut off by the platform.
      condition     = each.key != "chat" || var.chat_timeout_seconds < each.value.timeout
      error_message = "chat_timeout_seconds must be below the chat function's timeout (function_overrides.chat.timeout)."
    }
  }

  depends_on = [
    google_project_service.enabled,
    # Each account must be able to read its secrets before the first revision starts.
    google_secret_manager_secret_iam_member.function,
  ]
}

# Browser-facing functions: anyone may reach them. They answer CORS preflights (which never carry
# credentials) and verify the Supabase access token themselves; an IAM-protected function could
# not answer a preflight. An organisation policy restricting allUsers (domain-restricted sharing)
# makes this grant fail.
resource "google_cloud_run_service_iam_member" "public_invoker" {
  for_each = { for key, fn in local.functions : key => fn if fn.public }

  location = google_cloudfunctions2_function.fn[each.key].location
  service  = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# registry-refresh: only the scheduler's service account may invoke it.
resource "google_cloud_run_service_iam_member" "scheduler_invoker" {
  location = google_cloudfunctions2_function.fn["registry_refresh"].location
  service  = google_cloudfunctions2_function.fn["registry_refresh"].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}
