# Every local.registry_schedule_minutes (5) minutes Cloud Scheduler POSTs to registry-refresh with an OIDC token signed for the
# scheduler's service account. Cloud Run checks the token (audience and run.invoker) before the
# request reaches the function; the function checks the audience and email again
# (SCHEDULER_AUDIENCE, SCHEDULER_SERVICE_ACCOUNT).

resource "google_cloud_scheduler_job" "registry_refresh" {
  name        = local.scheduler_job_id
  description = "Reconcile the document registry with OpenAI's vector stores."
  region      = local.scheduler_region
  schedule    = "*/${local.registry_schedule_minutes} * * * *"
  time_zone   = "Etc/UTC"
  # Below the function's timeout (locals.tf), so the function ends a slow run itself.
  attempt_deadline = "${local.registry_attempt_deadline}s"

  # Modest: one retry after 30 s. The next scheduled run follows 5 minutes later anyway, and the
  # refresh is safe to run twice.
  retry_config {
    retry_count          = 1
    min_backoff_duration = "30s"
    max_backoff_duration = "60s"
    max_doublings        = 1
  }

  http_target {
    http_method = "POST"
    # The request goes to the same URL the token is signed for (locals.tf); with an override, which
    # may be a custom audience rather than an address, it goes to the URL the function reports.
    uri = (
      var.registry_audience_override != ""
      ? google_cloudfunctions2_function.fn["registry_refresh"].service_config[0].uri
      : local.registry_audience
    )
    # Without an explicit type Cloud Scheduler sends application/octet-stream.
    headers = { "Content-Type" = "application/json" }
    body    = base64encode(jsonencode({ trigger = "schedule" }))

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.registry_audience
    }
  }

  lifecycle {
    precondition {
      condition     = local.registry_attempt_deadline >= 15 && local.registry_attempt_deadline <= 1800
      error_message = "registry_refresh timeout minus 20 s must be between 15 and 1800 seconds (Cloud Scheduler's attempt deadline range)."
    }
    precondition {
      condition     = var.registry_time_budget_seconds < local.registry_attempt_deadline
      error_message = "registry_time_budget_seconds must be below the scheduler's attempt deadline (registry_refresh timeout minus 20 s)."
    }
  }

  depends_on = [
    google_project_service.enabled,
    google_cloud_run_service_iam_member.scheduler_invoker,
  ]
}
