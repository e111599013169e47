locals {
  # Sizing of each function, keyed by its entry point. var.function_overrides changes single fields.
  # - Concurrency > 1 needs a whole vCPU; THREADS is set to the concurrency so that gunicorn runs one
  #   thread per request Cloud Run may send (an open SSE stream holds its thread until it ends).
  # - chat streams answers, so its timeout is long: a stream is cut off at the timeout.
  # - upload holds up to `concurrency` uploads of MAX_UPLOAD_BYTES in memory at once.
  # - registry-refresh is private (scheduler only), one run per instance; its timeout bounds the
  #   scheduler's attempt deadline and REGISTRY_TIME_BUDGET_SECONDS (see scheduler.tf).
  function_defaults = {
    upload           = { memory = "1Gi", timeout = 300, concurrency = 8, min_instances = 0, max_instances = 10, public = true }
    chat             = { memory = "512Mi", timeout = 900, concurrency = 8, min_instances = 0, max_instances = 20, public = true }
    sessions         = { memory = "512Mi", timeout = 60, concurrency = 8, min_instances = 0, max_instances = 10, public = true }
    usage            = { memory = "512Mi", timeout = 60, concurrency = 8, min_instances = 0, max_instances = 5, public = true }
    admin            = { memory = "512Mi", timeout = 120, concurrency = 4, min_instances = 0, max_instances = 3, public = true }
    registry_refresh = { memory = "512Mi", timeout = 300, concurrency = 1, min_instances = 0, max_instances = 2, public = false }
  }

  # Every override object has the same fields, unset ones null, so the merge below keeps one shape.
  function_overrides = {
    for key in keys(local.function_defaults) : key => merge(
      { memory = null, timeout = null, concurrency = null, min_instances = null, max_instances = null },
      try(var.function_overrides[key], {}),
    )
  }

  all_functions = {
    for key, base in local.function_defaults : key => merge(
      base,
      { for field, value in local.function_overrides[key] : field => value if value != null },
      {
        # Cloud Run service name (kebab-case); the entry point keeps the Python name.
        name        = "${var.name_prefix}${replace(key, "_", "-")}"
        entry_point = key
        source_file = "functions/${key}/main.py"
        # Written by ./deploy.sh build (deploy/bundle.py) before every plan.
        bundle = "${path.module}/../dist/${key}.zip"
      },
    )
  }

  # Only functions whose source exists are deployed: a function is added to the project by writing
  # functions/<name>/main.py, and terraform picks it up on the next apply.
  functions = {
    for key, fn in local.all_functions : key => fn if fileexists("${path.module}/../${fn.source_file}")
  }
  chat_deployed = contains(keys(local.functions), "chat")

  supabase_url     = trimsuffix(var.supabase_url, "/")
  scheduler_region = var.scheduler_region != "" ? var.scheduler_region : var.region

  # SCHEDULER_AUDIENCE must be known before registry-refresh exists, because it is one of that
  # function's own environment variables: reading service_config[0].uri would make the function
  # depend on itself. Cloud Run gives every service a deterministic URL,
  # https://<service>-<project number>.<region>.run.app, which we compute here and use both as the
  # audience of the scheduler's OIDC token and as the value the function checks.
  registry_audience = (
    var.registry_audience_override != ""
    ? var.registry_audience_override
    : "https://${local.functions.registry_refresh.name}-${data.google_project.this.number}.${var.region}.run.app"
  )

  # The scheduler gives up on an attempt 20 s before the function's own timeout, so that the
  # function, not the platform, ends a slow run (and records it).
  registry_attempt_deadline = local.functions.registry_refresh.timeout - 20

  # The scheduler job's full name, as google_cloud_scheduler_job.registry_refresh.id reports it.
  # Computed rather than read from the resource for the same reason as the audience: the job depends
  # on registry-refresh (its invoker grant), and every function shares one environment map, so
  # reading the job's id would make the functions depend on themselves. scheduler.tf names the job
  # with local.scheduler_job_id, so the two cannot differ.
  scheduler_job_id   = "${var.name_prefix}registry-refresh"
  scheduler_job_name = "projects/${var.project_id}/locations/${local.scheduler_region}/jobs/${local.scheduler_job_id}"
  # The schedule's period; the admin health check calls the registry stale after twice this.
  registry_schedule_minutes = 5

  # Environment of each function: the settings groups its code reads (names as in common/settings.py).
  # A test (tests/deploy) checks these lists against the code: every variable a function reads is
  # given to it or left at the code's default for a stated reason, nothing else is given, and no
  # secret is ever a plain variable.
  env_groups = {
    # The publishable key is a plain variable on purpose: it is public by design (every frontend ships
    # it, and it grants no more than the anon role), so Secret Manager would protect nothing; the
    # variable's validation and the settings refuse a secret key put in its place.
    database = { plain = ["SUPABASE_URL", "SUPABASE_PUBLISHABLE_KEY"], secret = ["SUPABASE_SECRET_KEY", "DATABASE_URL"] }
    auth     = { plain = ["SUPABASE_URL", "JWT_ISSUER", "ALLOW_ANONYMOUS_USERS"], secret = ["SUPABASE_JWT_SECRET"] }
    openai = {
      plain  = ["OPENAI_MODEL", "OPENAI_REASONING_EFFORT", "CHAT_MAX_OUTPUT_TOKENS", "CHAT_MAX_TOOL_CALLS", "CHAT_MAX_NUM_RESULTS"]
      secret = ["OPENAI_API_KEY"]
    }
    registry = { plain = ["SCHEDULER_AUDIENCE", "SCHEDULER_SERVICE_ACCOUNT", "REGISTRY_TIME_BUDGET_SECONDS"], secret = [] }
    chat = {
      plain  = ["CHAT_MAX_MESSAGE_CHARS", "CHAT_TURNS_PER_MINUTE", "CHAT_TIMEOUT_SECONDS", "CHAT_HEARTBEAT_SECONDS", "CHAT_MAX_INPUT_TOKENS"]
      secret = []
    }
    admin = {
      plain  = ["ADMIN_CAN_READ_MESSAGES", "REGISTRY_SCHEDULE_MINUTES", "HEALTH_PENDING_TURN_SECONDS", "SCHEDULER_JOB_NAME"]
      secret = []
    }
    browser = { plain = ["CORS_ORIGINS"], secret = [] }
    uploads = { plain = ["MAX_UPLOAD_BYTES", "MAX_DOCUMENTS_PER_USER", "MAX_BYTES_PER_USER"], secret = [] }
    logging = { plain = ["GOOGLE_CLOUD_PROJECT", "LOG_LEVEL"], secret = [] }
  }

  # usage never calls OpenAI. sessions does, to delete a session's conversation; admin does, for its
  # health probe (GET /admin/health) and to delete any document's file.
  function_env_groups = {
    upload           = ["database", "auth", "openai", "browser", "uploads", "logging"]
    chat             = ["database", "auth", "openai", "chat", "browser", "logging"]
    sessions         = ["database", "auth", "openai", "browser", "logging"]
    usage            = ["database", "auth", "browser", "logging"]
    admin            = ["database", "auth", "openai", "admin", "browser", "logging"]
    registry_refresh = ["database", "auth", "openai", "chat", "registry", "logging"]
  }

  plain_values = {
    SUPABASE_URL                 = local.supabase_url
    SUPABASE_PUBLISHABLE_KEY     = var.supabase_publishable_key
    JWT_ISSUER                   = "${local.supabase_url}/auth/v1"
    ALLOW_ANONYMOUS_USERS        = tostring(var.allow_anonymous_users)
    OPENAI_MODEL                 = var.openai_model
    OPENAI_REASONING_EFFORT      = var.openai_reasoning_effort
    CHAT_MAX_OUTPUT_TOKENS       = tostring(var.chat_max_output_tokens)
    CHAT_MAX_TOOL_CALLS          = tostring(var.chat_max_tool_calls)
    CHAT_MAX_NUM_RESULTS         = tostring(var.chat_max_num_results)
    SCHEDULER_AUDIENCE           = local.registry_audience
    SCHEDULER_SERVICE_ACCOUNT    = google_service_account.scheduler.email
    REGISTRY_TIME_BUDGET_SECONDS = tostring(var.registry_time_budget_seconds)
    CORS_ORIGINS                 = join(",", var.cors_origins)
    CHAT_MAX_MESSAGE_CHARS       = tostring(var.chat_max_message_chars)
    CHAT_TURNS_PER_MINUTE        = tostring(var.chat_turns_per_minute)
    CHAT_TIMEOUT_SECONDS         = tostring(var.chat_timeout_seconds)
    CHAT_HEARTBEAT_SECONDS       = tostring(var.chat_heartbeat_seconds)
    CHAT_MAX_INPUT_TOKENS        = tostring(var.chat_max_input_tokens)
    ADMIN_CAN_READ_MESSAGES      = tostring(var.admin_can_read_messages)
    REGISTRY_SCHEDULE_MINUTES    = tostring(local.registry_schedule_minutes)
    HEALTH_PENDING_TURN_SECONDS  = tostring(var.health_pending_turn_seconds)
    SCHEDULER_JOB_NAME           = local.scheduler_job_name
    MAX_UPLOAD_BYTES             = tostring(var.max_upload_bytes)
    MAX_DOCUMENTS_PER_USER       = tostring(var.max_documents_per_user)
    MAX_BYTES_PER_USER           = tostring(var.max_bytes_per_user)
    GOOGLE_CLOUD_PROJECT         = var.project_id
    LOG_LEVEL                    = upper(var.log_level)
  }

  function_env = {
    for key, fn in local.functions : key => merge(
      {
        for name in distinct(flatten([for group in local.function_env_groups[key] : local.env_groups[group].plain])) :
        name => local.plain_values[name]
      },
      # Read by functions-framework: one gunicorn thread per request Cloud Run may send.
      { THREADS = tostring(fn.concurrency) },
    )
  }

  # Secret values. The optional ones exist only when their variable is non-empty. Only the names
  # decide what is created, so the names are unmarked; the values stay sensitive.
  secret_values = {
    SUPABASE_SECRET_KEY = var.supabase_secret_key
    OPENAI_API_KEY      = var.openai_api_key
    SUPABASE_JWT_SECRET = var.supabase_jwt_secret
    DATABASE_URL        = var.database_url
  }
  required_secrets = ["SUPABASE_SECRET_KEY", "OPENAI_API_KEY"]
  present_secrets = [
    for name, value in local.secret_values : name
    if contains(local.required_secrets, name) || nonsensitive(value != "")
  ]

  # The secrets each deployed function reads, and the secrets any deployed function reads.
  function_secrets = {
    for key, fn in local.functions : key => toset([
      for name in flatten([for group in local.function_env_groups[key] : local.env_groups[group].secret]) :
      name if contains(local.present_secrets, name)
    ])
  }
  secret_names = toset(flatten([for names in values(local.function_secrets) : tolist(names)]))

  # One Secret Manager grant per (function, secret) pair: each function's account reads only its own.
  secret_grants = merge([
    for key, names in local.function_secrets : { for name in names : "${key}/${name}" => { function = key, secret = name } }
  ]...)

  # Cloud Logging query fragment selecting the log entries of this deployment's functions.
  service_names      = [for fn in local.functions : fn.name]
  log_service_filter = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=(${join(" OR ", formatlist("\"%s\"", local.service_names))})"
}
