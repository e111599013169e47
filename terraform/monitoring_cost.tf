# LLM cost monitoring (channel and shared locals in monitoring.tf).

# ---------------------------------------------------------------------------------------------------
# LLM cost per chat turn. The chat function logs {"event": "chat_turn", "cost_usd": <number>,
# "model": "...", ...} once per turn; a value-extracting log metric must be a DISTRIBUTION.
#
# Caveats: a distribution answers "how expensive is a turn" (percentiles, bucketed, so
# approximate), not "how much did we spend this hour"; a threshold condition cannot sum the values.
# The exact controls on spend are the per-user budgets in the database and the provider's billing
# limits. The second policy below matches single log lines, so it is exact for "one turn cost more
# than X".
# ---------------------------------------------------------------------------------------------------

resource "google_logging_metric" "chat_turn_cost" {
  name        = "${var.name_prefix}chat_turn_cost_usd"
  description = "Cost in US dollars of each chat turn, by model."
  filter      = "${local.log_service_filter} AND jsonPayload.event=\"chat_turn\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "{USD}"
    display_name = "Chat turn cost (USD)"
    labels {
      key         = "model"
      value_type  = "STRING"
      description = "Model that answered the turn."
    }
  }

  value_extractor = "EXTRACT(jsonPayload.cost_usd)"
  label_extractors = {
    model = "EXTRACT(jsonPayload.model)"
  }

  # Buckets from $0.0001 doubling 32 times (up to ~$430k): fine resolution at cents and below.
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 32
      growth_factor      = 2
      scale              = 0.0001
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "chat_cost_p99" {
  count = local.chat_deployed ? 1 : 0

  display_name = "${local.all_functions.chat.name}: p99 cost per turn above ${var.alert_llm_cost_p99_usd} USD"
  combiner     = "OR"
  severity     = "WARNING"

  conditions {
    display_name = "p99 cost per turn over 1 h, per model"
    condition_threshold {
      filter = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.chat_turn_cost.name}\""
      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_99"
        group_by_fields      = ["metric.label.model"]
      }
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_llm_cost_p99_usd
      duration        = "0s"
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The 99th percentile cost of one chat turn over the last hour is above ${var.alert_llm_cost_p99_usd} USD for the model in the incident's labels (bucketed, so approximate). Look for long conversations, large max output, many file_search calls (CHAT_MAX_TOOL_CALLS, CHAT_MAX_NUM_RESULTS) or a model or price change."
  }

  notification_channels = local.channels
}

resource "google_monitoring_alert_policy" "chat_cost_single_turn" {
  count = local.chat_deployed ? 1 : 0

  display_name = "${local.all_functions.chat.name}: a turn cost more than ${var.alert_llm_cost_single_call_usd} USD"
  combiner     = "OR"
  severity     = "WARNING"

  conditions {
    display_name = "chat_turn with cost_usd above the ceiling"
    condition_matched_log {
      filter = "${local.log_service_filter} AND jsonPayload.event=\"chat_turn\" AND jsonPayload.cost_usd>${var.alert_llm_cost_single_call_usd}"
      label_extractors = {
        model = "EXTRACT(jsonPayload.model)"
      }
    }
  }

  # Required for log-match conditions: at most one notification per hour.
  alert_strategy {
    notification_rate_limit {
      period = "3600s"
    }
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "One chat turn cost more than ${var.alert_llm_cost_single_call_usd} USD. The matched log line has the session, user, model and token counts."
  }

  notification_channels = local.channels
}
