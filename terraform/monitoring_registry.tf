# Registry refresh monitoring (channel and shared locals in monitoring.tf).

locals {
  registry_log_filter = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${local.functions.registry_refresh.name}\" AND jsonPayload.event=\"registry_run\""
}

# ---------------------------------------------------------------------------------------------------
# Registry refresh. Each run ends with one summary line:
#   {"event": "registry_run", "errors": <number>, "missing": <number>, ...}
# Three counters over that line: every run (for the "no run lately" alert), runs with errors > 0,
# runs with missing > 0. The comparisons also hold if the fields arrive as strings, since any
# non-negative number other than 0 sorts after "0".
# ---------------------------------------------------------------------------------------------------

resource "google_logging_metric" "registry_runs" {
  name        = "${var.name_prefix}registry_runs"
  description = "Registry refresh runs (one per summary log line)."
  filter      = local.registry_log_filter

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Registry refresh runs"
  }

  depends_on = [google_project_service.enabled]
}

resource "google_logging_metric" "registry_runs_with_errors" {
  name        = "${var.name_prefix}registry_runs_with_errors"
  description = "Registry refresh runs whose summary reports errors > 0."
  filter      = "${local.registry_log_filter} AND jsonPayload.errors>0"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Registry refresh runs with errors"
  }

  depends_on = [google_project_service.enabled]
}

resource "google_logging_metric" "registry_runs_with_missing" {
  name        = "${var.name_prefix}registry_runs_with_missing"
  description = "Registry refresh runs whose summary reports missing > 0 (documents whose OpenAI file is gone)."
  filter      = "${local.registry_log_filter} AND jsonPayload.missing>0"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Registry refresh runs with missing files"
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "registry_problems" {
  display_name = "${local.functions.registry_refresh.name}: run reported errors or missing files"
  combiner     = "OR"
  severity     = "WARNING"

  conditions {
    display_name = "a run reported errors > 0"
    condition_threshold {
      filter = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.registry_runs_with_errors.name}\""
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      trigger {
        count = 1
      }
    }
  }

  conditions {
    display_name = "a run reported missing > 0"
    condition_threshold {
      filter = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.registry_runs_with_missing.name}\""
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A registry refresh run reported errors or documents whose OpenAI file is missing. The run's summary line (`${local.registry_log_filter}`) and the registry runs table have the details."
  }

  notification_channels = local.channels
}

resource "google_monitoring_alert_policy" "registry_absent" {
  display_name = "${local.functions.registry_refresh.name}: no run for ${var.alert_registry_absent_seconds / 60} min"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = "no registry_run summary logged"
    condition_absent {
      filter   = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.registry_runs.name}\""
      duration = "${var.alert_registry_absent_seconds}s"
      # Summed across revisions, so a redeploy (new revision, old series ends) is not an absence.
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "No registry refresh run has been logged for ${var.alert_registry_absent_seconds / 60} minutes (the job runs every 5). Check the Cloud Scheduler job `${google_cloud_scheduler_job.registry_refresh.name}` (paused? 401/403 from the OIDC audience or invoker grant?) and the function's logs."
  }

  notification_channels = local.channels
}
