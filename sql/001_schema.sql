-- Tables, constraints and indexes. Re-runnable: every statement is "if not exists".
-- Writes happen only through the SQL function API (security definer functions in later files);
-- the API roles get SELECT on the user-facing tables, filtered by the policies in 002_rls.sql.

create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- New functions are not executable by anyone until a grant beside the function says so.
alter default privileges revoke execute on functions from public;
alter default privileges in schema public revoke execute on functions from anon, authenticated, service_role;
alter default privileges in schema public revoke all on tables from anon;
alter default privileges in schema private revoke execute on functions from public;
-- Supabase grants every new table, sequence and function in public to anon, authenticated and
-- service_role by default; here future objects start closed to the user-facing roles.
alter default privileges in schema public revoke all on tables from anon, authenticated;
alter default privileges in schema public revoke all on sequences from anon, authenticated;
alter default privileges in schema public revoke all on functions from anon, authenticated;

-- Money: exact, never negative, never NaN (NaN >= 0 is true in PostgreSQL) and never infinite
-- (numeric has infinity from PostgreSQL 14: the domain's precision refuses it with 22003).
do $$
begin
  if not exists (select 1 from pg_type t join pg_namespace n on n.oid = t.typnamespace
                  where n.nspname = 'public' and t.typname = 'usd') then
    create domain public.usd as numeric(16, 8)
      constraint usd_valid check (value >= 0 and value <> 'NaN'::numeric);
  end if;
end
$$;
grant usage on domain public.usd to authenticated, service_role;

create table if not exists public.user_profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  email text,
  role text not null default 'user' check (role in ('user', 'admin')),
  monthly_budget_usd public.usd not null default 10,
  disabled boolean not null default false,
  vector_store_id text unique,
  created_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now()
);
create index if not exists user_profiles_email_idx on public.user_profiles (lower(email));
create index if not exists user_profiles_created_idx on public.user_profiles (created_at desc, id desc);

create table if not exists public.documents (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.user_profiles (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 255),
  mime_type text not null check (char_length(mime_type) between 1 and 127),
  size_bytes bigint not null check (size_bytes > 0),
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  openai_file_id text unique,
  vector_store_id text,
  status text not null default 'uploading'
    check (status in ('uploading', 'processing', 'ready', 'failed', 'deleting', 'deleted', 'missing')),
  error text,
  usage_bytes bigint check (usage_bytes >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz
);
create index if not exists documents_user_status_created_idx on public.documents (user_id, status, created_at desc);
create index if not exists documents_user_created_idx on public.documents (user_id, created_at desc, id desc);
create unique index if not exists documents_user_sha256_live_idx on public.documents (user_id, sha256)
  where status not in ('deleting', 'deleted');
create index if not exists documents_status_updated_idx on public.documents (status, updated_at);

create table if not exists public.document_access (
  document_id uuid not null references public.documents (id) on delete cascade,
  user_id uuid not null references public.user_profiles (id) on delete cascade,
  granted_by uuid not null references public.user_profiles (id) on delete cascade,
  created_at timestamptz not null default now(),
  primary key (document_id, user_id)
);
-- When the registry refresh last saw the shared file in the grantee's store (null: not yet).
alter table public.document_access add column if not exists registry_seen_at timestamptz;
create index if not exists document_access_user_idx on public.document_access (user_id);
create index if not exists document_access_granted_by_idx on public.document_access (granted_by);

create table if not exists public.chat_sessions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.user_profiles (id) on delete cascade,
  title text not null check (char_length(title) between 1 and 200),
  openai_conversation_id text,
  document_ids jsonb check (document_ids is null or jsonb_typeof(document_ids) = 'array'),
  message_count integer not null default 0 check (message_count >= 0),
  cost_usd public.usd not null default 0,
  last_message_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists chat_sessions_user_updated_idx on public.chat_sessions (user_id, updated_at desc, id desc);

create table if not exists public.chat_messages (
  id uuid primary key default gen_random_uuid(),
  session_id uuid not null references public.chat_sessions (id) on delete cascade,
  user_id uuid not null references public.user_profiles (id) on delete cascade,
  role text not null check (role in ('user', 'assistant')),
  status text not null default 'complete' check (status in ('pending', 'complete', 'failed')),
  content text not null default '',
  citations jsonb not null default '[]'::jsonb check (jsonb_typeof(citations) = 'array'),
  openai_response_id text unique,
  model text,
  input_tokens integer check (input_tokens >= 0),
  cached_tokens integer check (cached_tokens >= 0),
  cache_write_tokens integer check (cache_write_tokens >= 0),
  output_tokens integer check (output_tokens >= 0),
  reasoning_tokens integer check (reasoning_tokens >= 0),
  file_search_calls integer check (file_search_calls >= 0),
  cost_usd public.usd,
  reserved_usd public.usd not null default 0,
  over_reservation boolean not null default false,
  price_version text check (char_length(price_version) <= 100),
  usage jsonb check (usage is null or jsonb_typeof(usage) = 'object'),
  retrieval jsonb check (retrieval is null or jsonb_typeof(retrieval) = 'array'),
  incomplete_reason text check (char_length(incomplete_reason) <= 100),
  latency_ms integer check (latency_ms >= 0),
  error_code text,
  error_message text,
  request_id text check (char_length(request_id) <= 200),
  created_at timestamptz not null default now(),
  completed_at timestamptz
);
create index if not exists chat_messages_session_created_idx on public.chat_messages (session_id, created_at, id);
create index if not exists chat_messages_user_idx on public.chat_messages (user_id);
create index if not exists chat_messages_pending_idx on public.chat_messages (user_id, created_at) where status = 'pending';
create index if not exists chat_messages_stale_idx on public.chat_messages (created_at) where status = 'pending';
-- Turns started per user in the last minute (the rate limit) and one turn per request id.
create index if not exists chat_messages_turns_idx on public.chat_messages (user_id, created_at desc)
  where role = 'assistant';
create unique index if not exists chat_messages_request_idx on public.chat_messages (user_id, request_id, role)
  where request_id is not null;

-- The ledger. Rows outlive their user (no foreign key to the profile: the user id stays) and their
-- session and message (set null). Keys are made by the database, never chosen by a caller: one row
-- per (message, service, model) for a chat turn, one per (document, UTC day) for vector storage; a
-- second row with the same key is an error, never dropped in silence.
create table if not exists public.usage_logs (
  id bigint generated always as identity primary key,
  user_id uuid not null,
  session_id uuid references public.chat_sessions (id) on delete set null,
  message_id uuid references public.chat_messages (id) on delete set null,
  document_id uuid,
  service text not null check (service in ('chat', 'file_search', 'vector_storage')),
  model text,
  input_tokens bigint not null default 0 check (input_tokens >= 0),
  cached_tokens bigint not null default 0 check (cached_tokens >= 0),
  cache_write_tokens bigint not null default 0 check (cache_write_tokens >= 0),
  output_tokens bigint not null default 0 check (output_tokens >= 0),
  reasoning_tokens bigint not null default 0 check (reasoning_tokens >= 0),
  tool_calls integer not null default 0 check (tool_calls >= 0),
  quantity numeric(20, 8) not null default 0 check (quantity >= 0 and quantity <> 'NaN'::numeric),
  cost_usd public.usd not null,
  price_version text check (char_length(price_version) <= 100),
  -- Kept only for the storage rows written by the registry's accrual; no turn row carries one.
  request_id text unique check (char_length(request_id) between 1 and 200),
  created_at timestamptz not null default now()
);
create unique index if not exists usage_logs_turn_key on public.usage_logs (message_id, service, coalesce(model, ''))
  where message_id is not null;
create index if not exists usage_logs_user_service_created_idx on public.usage_logs (user_id, service, created_at);
create index if not exists usage_logs_session_idx on public.usage_logs (session_id);
create index if not exists usage_logs_message_idx on public.usage_logs (message_id);

-- Daily rollup maintained by a trigger on usage_logs: summaries read this, never the raw rows.
create table if not exists public.usage_daily (
  user_id uuid not null,
  day date not null,
  service text not null,
  model text not null default '',
  requests bigint not null default 0,
  input_tokens bigint not null default 0,
  cached_tokens bigint not null default 0,
  cache_write_tokens bigint not null default 0,
  output_tokens bigint not null default 0,
  reasoning_tokens bigint not null default 0,
  tool_calls bigint not null default 0,
  quantity numeric(20, 8) not null default 0,
  cost_usd public.usd not null default 0,
  primary key (user_id, day, service, model)
);
create index if not exists usage_daily_day_idx on public.usage_daily (day);

create table if not exists public.registry_runs (
  id bigint generated always as identity primary key,
  status text not null default 'running' check (status in ('running', 'completed', 'partial', 'failed')),
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  lease_until timestamptz not null,
  figures jsonb not null default '{}'::jsonb,
  error text
);
create index if not exists registry_runs_started_idx on public.registry_runs (started_at desc);
create unique index if not exists registry_runs_one_running_idx on public.registry_runs ((true)) where status = 'running';

create table if not exists public.audit_log (
  id bigint generated always as identity primary key,
  actor_id uuid references public.user_profiles (id) on delete set null,
  action text not null,
  target_type text not null,
  target_id text,
  details jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);
create index if not exists audit_log_created_idx on public.audit_log (created_at desc, id desc);
create index if not exists audit_log_actor_idx on public.audit_log (actor_id);

create table if not exists public.idempotency_keys (
  user_id uuid not null references public.user_profiles (id) on delete cascade,
  route text not null,
  key text not null check (char_length(key) between 8 and 255),
  fingerprint text not null,
  status text not null default 'in_progress' check (status in ('in_progress', 'done')),
  response_status integer,
  response_body jsonb,
  locked_until timestamptz not null,
  created_at timestamptz not null default now(),
  primary key (user_id, route, key)
);
create index if not exists idempotency_keys_created_idx on public.idempotency_keys (created_at);

-- Sequences are written only by the inserts of the function API (running as the table owner).
revoke all on all sequences in schema public from anon, authenticated;

-- A database made by an earlier version of this file gets the same ledger: the money domain, the
-- columns added since, no foreign key from the ledger to the profile, no caller-chosen turn key. Every
-- statement is a no-op on a database made by this version. (The views over these columns are made
-- again in 002_rls.sql.)
drop view if exists public.chat_sessions_summary, public.user_usage_summary;
alter table public.user_profiles alter column monthly_budget_usd type public.usd,
  drop constraint if exists user_profiles_monthly_budget_usd_check;
alter table public.chat_sessions add column if not exists cost_usd public.usd not null default 0;
alter table public.chat_messages
  add column if not exists cache_write_tokens integer check (cache_write_tokens >= 0),
  add column if not exists over_reservation boolean not null default false,
  add column if not exists price_version text check (char_length(price_version) <= 100),
  add column if not exists usage jsonb check (usage is null or jsonb_typeof(usage) = 'object'),
  add column if not exists retrieval jsonb check (retrieval is null or jsonb_typeof(retrieval) = 'array'),
  add column if not exists incomplete_reason text check (char_length(incomplete_reason) <= 100),
  alter column cost_usd type public.usd, alter column reserved_usd type public.usd,
  drop constraint if exists chat_messages_cost_usd_check, drop constraint if exists chat_messages_reserved_usd_check;
alter table public.usage_logs
  add column if not exists document_id uuid,
  add column if not exists price_version text check (char_length(price_version) <= 100),
  alter column request_id drop not null, alter column cost_usd type public.usd,
  drop constraint if exists usage_logs_cost_usd_check, drop constraint if exists usage_logs_user_id_fkey;
alter table public.usage_daily alter column cost_usd type public.usd,
  drop constraint if exists usage_daily_user_id_fkey;

-- Storage rows are keyed by (document, UTC day); written by the registry's accrual.
create unique index if not exists usage_logs_storage_key
  on public.usage_logs (document_id, ((created_at at time zone 'UTC')::date))
  where service = 'vector_storage' and document_id is not null;
create index if not exists usage_logs_document_idx on public.usage_logs (document_id) where document_id is not null;

-- Grants: reading is per-row (RLS); every write goes through the function API.
revoke all on public.user_profiles, public.documents, public.document_access, public.chat_sessions,
  public.chat_messages, public.usage_logs, public.usage_daily, public.registry_runs, public.audit_log,
  public.idempotency_keys from anon, authenticated;
grant select on public.user_profiles, public.documents, public.document_access, public.chat_sessions,
  public.chat_messages, public.usage_logs, public.usage_daily to authenticated;
grant all on public.user_profiles, public.documents, public.document_access, public.chat_sessions,
  public.chat_messages, public.usage_logs, public.usage_daily, public.registry_runs, public.audit_log,
  public.idempotency_keys to service_role;
