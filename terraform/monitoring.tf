# Log-based metrics and alert policies. Every policy notifies the one email channel.
#
# Log-based metrics count only entries written after the metric exists, and a counter writes no
# point (not even 0) in a period without a matching entry: "has not happened" is therefore
# expressed with condition_absent, never with "< 1".

locals {
  channels = [google_monitoring_notification_channel.email.name]

  run_metric_filter = "resource.type=\"cloud_run_revision\" AND metric.type=\"run.googleapis.com/%s\" AND resource.labels.service_name=\"%s\""
}

resource "google_monitoring_notification_channel" "email" {
  display_name = "Document chat alerts (${var.alert_email})"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }

  depends_on = [google_project_service.enabled]
}

# ---------------------------------------------------------------------------------------------------
# 5xx ratio, one policy per function: more than var.alert_5xx_ratio of the requests of the last
# 5 minutes answered 5xx, and (guard against tiny samples) more than var.alert_5xx_min_count of them.
# ---------------------------------------------------------------------------------------------------

resource "google_monitoring_alert_policy" "http_5xx_ratio" {
  for_each = local.functions

  display_name = "${each.value.name}: 5xx above ${var.alert_5xx_ratio * 100}% of requests"
  combiner     = var.alert_5xx_min_count > 0 ? "AND" : "OR"
  severity     = "ERROR"

  conditions {
    display_name = "5xx share of requests over 5 min"
    condition_threshold {
      filter             = "${format(local.run_metric_filter, "request_count", each.value.name)} AND metric.labels.response_code_class=\"5xx\""
      denominator_filter = format(local.run_metric_filter, "request_count", each.value.name)
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_5xx_ratio
      duration        = "0s"
      trigger {
        count = 1
      }
    }
  }

  dynamic "conditions" {
    for_each = var.alert_5xx_min_count > 0 ? [var.alert_5xx_min_count] : []
    content {
      display_name = "more than ${conditions.value} 5xx responses in 5 min"
      condition_threshold {
        filter = "${format(local.run_metric_filter, "request_count", each.value.name)} AND metric.labels.response_code_class=\"5xx\""
        aggregations {
          alignment_period     = "300s"
          per_series_aligner   = "ALIGN_DELTA"
          cross_series_reducer = "REDUCE_SUM"
        }
        comparison      = "COMPARISON_GT"
        threshold_value = conditions.value
        duration        = "0s"
        trigger {
          count = 1
        }
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Function `${each.value.name}` answered more than ${var.alert_5xx_ratio * 100}% of its requests with 5xx over 5 minutes. Check its ERROR log entries (`resource.labels.service_name=\"${each.value.name}\" severity>=ERROR`) for the cause; the response body's `code` names the failing dependency."
  }

  notification_channels = local.channels
}

# ---------------------------------------------------------------------------------------------------
# chat p95 latency. request_latencies is a distribution in milliseconds; a streamed answer counts
# until its last event, so the threshold sits well above a typical turn.
# ---------------------------------------------------------------------------------------------------

resource "google_monitoring_alert_policy" "chat_latency_p95" {
  count = local.chat_deployed ? 1 : 0

  display_name = "${local.all_functions.chat.name}: p95 latency above ${var.alert_chat_p95_latency_ms} ms"
  combiner     = "OR"
  severity     = "WARNING"

  conditions {
    display_name = "p95 request latency over 5 min"
    condition_threshold {
      filter = format(local.run_metric_filter, "request_latencies", local.all_functions.chat.name)
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
      }
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_chat_p95_latency_ms
      duration        = "300s"
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The 95th percentile latency of `${local.all_functions.chat.name}` has stayed above ${var.alert_chat_p95_latency_ms} ms for 5 minutes. Usual causes: OpenAI slowness or 429 back-off, cold starts, or instances at max_instance_count."
  }

  notification_channels = local.channels
}

# ---------------------------------------------------------------------------------------------------
# ERROR log entries per function. Cloud Run's own request log is left out: it logs every 5xx at
# ERROR, which the ratio alert above already covers.
# ---------------------------------------------------------------------------------------------------

resource "google_logging_metric" "error_logs" {
  name        = "${var.name_prefix}error_log_entries"
  description = "Application log entries at ERROR or above, per function."
  filter      = "${local.log_service_filter} AND severity>=ERROR AND NOT logName:\"run.googleapis.com%2Frequests\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Error log entries"
    labels {
      key         = "service"
      value_type  = "STRING"
      description = "Cloud Run service (function) name."
    }
  }

  label_extractors = {
    service = "EXTRACT(resource.labels.service_name)"
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "error_logs" {
  display_name = "Document chat: more than ${var.alert_error_logs_per_5m} ERROR log entries in 5 min"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = "ERROR entries per function over 5 min"
    condition_threshold {
      filter = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.error_logs.name}\""
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.service"]
      }
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_error_logs_per_5m
      duration        = "0s"
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A function logged more than ${var.alert_error_logs_per_5m} entries at ERROR or above in 5 minutes; the incident's `service` label names it. Logs Explorer: `${local.log_service_filter} AND severity>=ERROR`."
  }

  notification_channels = local.channels
}
