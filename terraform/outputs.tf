output "function_urls" {
  description = "URL of each function, keyed by entry point. The user-facing ones are what the frontend calls; each routes relative to its own root."
  value       = { for key, fn in google_cloudfunctions2_function.fn : key => fn.service_config[0].uri }
}

output "upload_url" {
  description = "URL of the upload function (null until functions/upload/main.py exists)."
  value       = try(google_cloudfunctions2_function.fn["upload"].service_config[0].uri, null)
}

output "chat_url" {
  description = "URL of the chat function (null until functions/chat/main.py exists)."
  value       = try(google_cloudfunctions2_function.fn["chat"].service_config[0].uri, null)
}

output "sessions_url" {
  description = "URL of the sessions function (null until functions/sessions/main.py exists)."
  value       = try(google_cloudfunctions2_function.fn["sessions"].service_config[0].uri, null)
}

output "usage_url" {
  description = "URL of the usage function (null until functions/usage/main.py exists)."
  value       = try(google_cloudfunctions2_function.fn["usage"].service_config[0].uri, null)
}

output "admin_url" {
  description = "URL of the admin function (null until functions/admin/main.py exists)."
  value       = try(google_cloudfunctions2_function.fn["admin"].service_config[0].uri, null)
}

output "registry_refresh_url" {
  description = "URL of the registry-refresh function (private: scheduler only)."
  value       = google_cloudfunctions2_function.fn["registry_refresh"].service_config[0].uri
}

output "registry_audience" {
  description = "Audience of the scheduler's OIDC token and SCHEDULER_AUDIENCE of registry-refresh (the function's deterministic run.app URL unless overridden)."
  value       = local.registry_audience
}

output "scheduler_job_name" {
  description = "Cloud Scheduler job that calls registry-refresh every 5 minutes (run it now: gcloud scheduler jobs run NAME --location LOCATION)."
  value       = google_cloud_scheduler_job.registry_refresh.name
}

output "scheduler_job_location" {
  description = "Location of the Cloud Scheduler job."
  value       = google_cloud_scheduler_job.registry_refresh.region
}

output "function_service_accounts" {
  description = "Service account each function runs as, keyed by entry point."
  value       = { for key, account in google_service_account.fn : key => account.email }
}

output "scheduler_service_account" {
  description = "Service account Cloud Scheduler signs its OIDC tokens as (SCHEDULER_SERVICE_ACCOUNT)."
  value       = google_service_account.scheduler.email
}

output "secret_ids" {
  description = "Secret Manager secret ids, keyed by the environment variable they fill."
  value       = { for name, secret in google_secret_manager_secret.app : name => secret.secret_id }
}

output "source_objects" {
  description = "gs:// path of the bundle each function was built from, keyed by entry point."
  value       = { for key, object in google_storage_bucket_object.bundle : key => "gs://${google_storage_bucket.source.name}/${object.name}" }
}
