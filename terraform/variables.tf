# ---------------------------------------------------------------------------------------------------
# Project and naming
# ---------------------------------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project that hosts the functions, secrets, scheduler job and alerts."
  type        = string
}

variable "region" {
  description = "Region of the functions, the source bucket and (unless scheduler_region is set) the scheduler job."
  type        = string
  default     = "europe-west1"
}

variable "scheduler_region" {
  description = "Cloud Scheduler location, when the functions' region has no Cloud Scheduler. Empty means var.region."
  type        = string
  default     = ""
}

variable "name_prefix" {
  description = "Prefix for every function, service account, secret and metric name, so that several environments can share a project (e.g. \"stg-\"). Empty keeps the plain names: upload, chat, sessions, usage, admin, registry-refresh."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([a-z][a-z0-9-]{0,9})?$", var.name_prefix))
    error_message = "name_prefix must be empty or at most 10 lowercase letters, digits and dashes, starting with a letter (service account ids are limited to 30 characters)."
  }
}

variable "labels" {
  description = "Labels put on every resource that takes labels."
  type        = map(string)
  default     = { app = "document-chat" }
}

variable "enable_apis" {
  description = "Enable the Google APIs this configuration needs. Turn off when the project's APIs are managed elsewhere."
  type        = bool
  default     = true
}

variable "source_bucket_name" {
  description = "Name of the bucket that receives the zipped source. Empty means \"<project_id>-<name_prefix>function-source\"."
  type        = string
  default     = ""
}

variable "build_service_account" {
  description = "Full resource name (projects/P/serviceAccounts/EMAIL) of the service account Cloud Build uses to build the functions. Null keeps the platform default; set it where an organisation policy leaves the default build account without roles. It needs roles/logging.logWriter, roles/artifactregistry.writer and read access to the source bucket, and the deployer needs actAs on it."
  type        = string
  default     = null
}

variable "function_overrides" {
  description = "Per-function changes to the sizing in locals.tf, keyed by function key (upload, chat, sessions, usage, admin, registry_refresh). Unset fields keep their defaults."
  type = map(object({
    memory        = optional(string)
    timeout       = optional(number)
    concurrency   = optional(number)
    min_instances = optional(number)
    max_instances = optional(number)
  }))
  default = {}

  validation {
    condition     = alltrue([for k in keys(var.function_overrides) : contains(["upload", "chat", "sessions", "usage", "admin", "registry_refresh"], k)])
    error_message = "function_overrides keys must be among: upload, chat, sessions, usage, admin, registry_refresh."
  }
}

# ---------------------------------------------------------------------------------------------------
# Application settings (plain environment variables; names as read by common/settings.py)
# ---------------------------------------------------------------------------------------------------

variable "supabase_url" {
  description = "Supabase project URL, e.g. https://<ref>.supabase.co (SUPABASE_URL). JWT_ISSUER is derived from it as <url>/auth/v1."
  type        = string

  validation {
    condition     = can(regex("^https://[^/\\s]+/?$", var.supabase_url)) && !can(regex("(?i)your[-_]project|<|>", var.supabase_url))
    error_message = "supabase_url must be the https URL of a real Supabase project, without a path."
  }
}

variable "supabase_publishable_key" {
  description = "Supabase publishable key (sb_publishable_...; Project Settings > API Keys), or on older projects the legacy anon key (SUPABASE_PUBLISHABLE_KEY). Public by design (every frontend ships it), so it is a plain variable; a secret key is refused here."
  type        = string

  validation {
    condition     = (can(regex("^sb_publishable_[A-Za-z0-9_-]+$", var.supabase_publishable_key)) || can(regex("^eyJ[A-Za-z0-9_-]*\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$", var.supabase_publishable_key))) && !can(regex("(?i)replace", var.supabase_publishable_key))
    error_message = "supabase_publishable_key must be a publishable key (sb_publishable_...) or a legacy anon JWT, never a secret key."
  }
}

variable "allow_anonymous_users" {
  description = "Accept Supabase anonymous sign-ins (is_anonymous tokens) (ALLOW_ANONYMOUS_USERS). Anonymous users get their own, lower monthly budget."
  type        = bool
  default     = false
}

variable "openai_model" {
  description = "Model used for chat turns (OPENAI_MODEL)."
  type        = string
  default     = "gpt-6-luna"
}

variable "openai_reasoning_effort" {
  description = "Reasoning effort of chat turns (OPENAI_REASONING_EFFORT): none, minimal, low, medium, high, xhigh or max; some models refuse none and minimal."
  type        = string
  default     = "low"

  validation {
    condition     = contains(["none", "minimal", "low", "medium", "high", "xhigh", "max"], var.openai_reasoning_effort)
    error_message = "openai_reasoning_effort must be one of none, minimal, low, medium, high, xhigh, max."
  }
}

variable "cors_origins" {
  description = "Browser origins allowed to call the user-facing functions (CORS_ORIGINS, joined with commas), e.g. [\"https://app.example.com\"]."
  type        = list(string)

  validation {
    condition     = alltrue([for o in var.cors_origins : can(regex("^https?://[^/\\s,]+$", o))])
    error_message = "Each CORS origin must be scheme://host[:port] with no path, comma or trailing slash."
  }
}

variable "max_upload_bytes" {
  description = "Largest accepted upload in bytes (MAX_UPLOAD_BYTES). Cloud Run refuses HTTP/1 requests over 32 MiB, multipart framing included, so this stays at or below 30 MiB."
  type        = number
  default     = 26214400

  validation {
    condition     = var.max_upload_bytes >= 1 && var.max_upload_bytes <= 31457280 && floor(var.max_upload_bytes) == var.max_upload_bytes
    error_message = "max_upload_bytes must be a whole number between 1 and 31457280 (30 MiB)."
  }
}

variable "max_documents_per_user" {
  description = "Documents one user may own at once (MAX_DOCUMENTS_PER_USER); an upload past it answers 413 quota_exceeded."
  type        = number
  default     = 1000

  validation {
    condition     = var.max_documents_per_user >= 1 && var.max_documents_per_user <= 1000000 && floor(var.max_documents_per_user) == var.max_documents_per_user
    error_message = "max_documents_per_user must be a whole number between 1 and 1000000."
  }
}

variable "max_bytes_per_user" {
  description = "Total bytes of the documents one user may own at once (MAX_BYTES_PER_USER); an upload past it answers 413 quota_exceeded."
  type        = number
  default     = 10737418240

  validation {
    condition     = var.max_bytes_per_user >= 1 && var.max_bytes_per_user <= 1125899906842624 && floor(var.max_bytes_per_user) == var.max_bytes_per_user
    error_message = "max_bytes_per_user must be a whole number between 1 and 2^50."
  }
}

variable "chat_max_message_chars" {
  description = "Longest user message of one chat turn, in characters (CHAT_MAX_MESSAGE_CHARS)."
  type        = number
  default     = 8000

  validation {
    condition     = var.chat_max_message_chars >= 1 && var.chat_max_message_chars <= 20000 && floor(var.chat_max_message_chars) == var.chat_max_message_chars
    error_message = "chat_max_message_chars must be a whole number between 1 and 20000."
  }
}

variable "chat_turns_per_minute" {
  description = "Chat turns one user may start per minute (CHAT_TURNS_PER_MINUTE); more answer 429."
  type        = number
  default     = 20

  validation {
    condition     = var.chat_turns_per_minute >= 1 && var.chat_turns_per_minute <= 1000 && floor(var.chat_turns_per_minute) == var.chat_turns_per_minute
    error_message = "chat_turns_per_minute must be a whole number between 1 and 1000."
  }
}

variable "chat_timeout_seconds" {
  description = "How long one chat turn may take before it is failed and recorded (CHAT_TIMEOUT_SECONDS). Must stay below the chat function's timeout (locals.tf), so the function, not the platform, ends a slow turn."
  type        = number
  default     = 120

  validation {
    condition     = var.chat_timeout_seconds >= 5 && var.chat_timeout_seconds <= 3000
    error_message = "chat_timeout_seconds must be between 5 and 3000."
  }
}

variable "chat_heartbeat_seconds" {
  description = "Interval of the SSE heartbeat comment on a streamed answer (CHAT_HEARTBEAT_SECONDS), so that proxies keep an idle stream open."
  type        = number
  default     = 15

  validation {
    condition     = var.chat_heartbeat_seconds >= 0.05 && var.chat_heartbeat_seconds <= 300
    error_message = "chat_heartbeat_seconds must be between 0.05 and 300."
  }
}

variable "chat_max_input_tokens" {
  description = "Input-token bound the worst-case cost of a turn (its budget reservation) is computed with (CHAT_MAX_INPUT_TOKENS)."
  type        = number
  default     = 64000

  validation {
    condition     = var.chat_max_input_tokens >= 1000 && var.chat_max_input_tokens <= 1000000 && floor(var.chat_max_input_tokens) == var.chat_max_input_tokens
    error_message = "chat_max_input_tokens must be a whole number between 1000 and 1000000."
  }
}

variable "admin_can_read_messages" {
  description = "Let admins read the content of users' messages (ADMIN_CAN_READ_MESSAGES). Off by default: admins see counts, tokens and costs only."
  type        = bool
  default     = false
}

variable "health_pending_turn_seconds" {
  description = "The admin health check fails when a chat turn has been pending longer than this (HEALTH_PENDING_TURN_SECONDS)."
  type        = number
  default     = 900

  validation {
    condition     = var.health_pending_turn_seconds >= 10 && var.health_pending_turn_seconds <= 86400 && floor(var.health_pending_turn_seconds) == var.health_pending_turn_seconds
    error_message = "health_pending_turn_seconds must be a whole number between 10 and 86400."
  }
}

variable "chat_max_output_tokens" {
  description = "Upper bound on output tokens of one chat turn (CHAT_MAX_OUTPUT_TOKENS)."
  type        = number
  default     = 1024

  validation {
    condition     = var.chat_max_output_tokens >= 16 && var.chat_max_output_tokens <= 128000
    error_message = "chat_max_output_tokens must be between 16 and 128000."
  }
}

variable "chat_max_tool_calls" {
  description = "Upper bound on file_search calls in one chat turn (CHAT_MAX_TOOL_CALLS)."
  type        = number
  default     = 2

  validation {
    condition     = var.chat_max_tool_calls >= 1 && var.chat_max_tool_calls <= 10
    error_message = "chat_max_tool_calls must be between 1 and 10."
  }
}

variable "chat_max_num_results" {
  description = "Passages file_search may return per call (CHAT_MAX_NUM_RESULTS); fewer means fewer billed input tokens."
  type        = number
  default     = 8

  validation {
    condition     = var.chat_max_num_results >= 1 && var.chat_max_num_results <= 50
    error_message = "chat_max_num_results must be between 1 and 50."
  }
}

variable "log_level" {
  description = "Application log level (LOG_LEVEL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], upper(var.log_level))
    error_message = "log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL."
  }
}

variable "registry_time_budget_seconds" {
  description = "How long one registry refresh may work before it stops and records a partial run (REGISTRY_TIME_BUDGET_SECONDS). Must end before the scheduler's attempt deadline (registry-refresh timeout minus 20 s)."
  type        = number
  default     = 240

  validation {
    condition     = var.registry_time_budget_seconds >= 1 && var.registry_time_budget_seconds <= 3000
    error_message = "registry_time_budget_seconds must be between 1 and 3000."
  }
}

variable "registry_audience_override" {
  description = "Audience of the scheduler's OIDC token, and the SCHEDULER_AUDIENCE registry-refresh checks. Empty means the function's deterministic URL https://<name>-<project number>.<region>.run.app, which the job then also calls. Set it only if the project disables run.app URLs or fronts the function with another URL (then also add it to the service as a Cloud Run custom audience); the job then calls the URL the function reports."
  type        = string
  default     = ""
}

# ---------------------------------------------------------------------------------------------------
# Secrets (stored in Secret Manager, written write-only: the values never reach the state file)
# ---------------------------------------------------------------------------------------------------

variable "supabase_secret_key" {
  description = "Supabase secret key (sb_secret_...; Project Settings > API Keys > Secret keys) or, on older projects, the legacy service_role key (SUPABASE_SECRET_KEY). Every function calls the SQL API with it; never the publishable key."
  type        = string
  sensitive   = true
  nullable    = false

  validation {
    condition     = length(trimspace(var.supabase_secret_key)) > 0
    error_message = "supabase_secret_key must not be empty."
  }
}

variable "openai_api_key" {
  description = "OpenAI API key (OPENAI_API_KEY)."
  type        = string
  sensitive   = true
  nullable    = false

  validation {
    condition     = length(trimspace(var.openai_api_key)) > 0
    error_message = "openai_api_key must not be empty."
  }
}

variable "supabase_jwt_secret" {
  description = "Legacy HS256 JWT secret of the Supabase project (SUPABASE_JWT_SECRET). Leave empty for projects that sign with asymmetric keys (verified through JWKS); no secret is created then."
  type        = string
  sensitive   = true
  default     = ""
  nullable    = false
}

variable "database_url" {
  description = "Optional Postgres URL of Supabase's Supavisor transaction pooler (port 6543, user postgres.<ref>) (DATABASE_URL). When set, the functions use psycopg instead of PostgREST; no secret is created when empty. The direct db.<ref>.supabase.co host is IPv6-only and unreachable from Cloud Run."
  type        = string
  sensitive   = true
  default     = ""
  nullable    = false

  validation {
    condition     = var.database_url == "" || can(regex("^postgres(ql)?://", var.database_url))
    error_message = "database_url must be empty or a postgres:// / postgresql:// URL."
  }
}

variable "secrets_version" {
  description = "Bump this number after changing any secret value: the values are write-only, so Terraform cannot see a change by itself. Each bump writes a new version of every secret and redeploys the functions pinned to it."
  type        = number
  default     = 1

  validation {
    condition     = var.secrets_version >= 1 && floor(var.secrets_version) == var.secrets_version
    error_message = "secrets_version must be a whole number, 1 or more."
  }
}

# ---------------------------------------------------------------------------------------------------
# Alerting
# ---------------------------------------------------------------------------------------------------

variable "alert_email" {
  description = "Email address that receives every alert."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email))
    error_message = "alert_email must be an email address."
  }
}

variable "alert_5xx_ratio" {
  description = "Alert when a function's share of 5xx responses over 5 minutes is above this (0.05 = 5%)."
  type        = number
  default     = 0.05
}

variable "alert_5xx_min_count" {
  description = "The 5xx-ratio alert also needs more than this many 5xx responses in the same 5 minutes, so that one failure among two requests does not page anyone. 0 disables the guard."
  type        = number
  default     = 2
}

variable "alert_chat_p95_latency_ms" {
  description = "Alert when the p95 latency of chat stays above this many milliseconds for 5 minutes. Streamed answers count their whole stream, so keep it well above a typical turn."
  type        = number
  default     = 30000
}

variable "alert_error_logs_per_5m" {
  description = "Alert when one function writes more than this many ERROR (or worse) log entries in 5 minutes."
  type        = number
  default     = 5
}

variable "alert_registry_absent_seconds" {
  description = "Alert when the registry refresh has logged no run summary for this long (seconds, whole minutes, at least 120)."
  type        = number
  default     = 1200

  validation {
    condition     = var.alert_registry_absent_seconds >= 120 && var.alert_registry_absent_seconds % 60 == 0
    error_message = "alert_registry_absent_seconds must be a whole number of minutes, at least 120 seconds."
  }
}

variable "alert_llm_cost_p99_usd" {
  description = "Alert when the 99th percentile of the cost of one chat turn over an hour, per model, is above this many US dollars."
  type        = number
  default     = 0.05
}

variable "alert_llm_cost_single_call_usd" {
  description = "Alert (at most once an hour) when any single chat turn costs more than this many US dollars. Exact: it matches the log line, not a bucketed distribution."
  type        = number
  default     = 0.50
}
