-- Row Level Security on every table, one policy per granted operation, (select auth.uid()) form so
-- the uid is computed once per statement. Tables without a policy are invisible to the API roles.

alter table public.user_profiles enable row level security;
alter table public.documents enable row level security;
alter table public.document_access enable row level security;
alter table public.chat_sessions enable row level security;
alter table public.chat_messages enable row level security;
alter table public.usage_logs enable row level security;
alter table public.usage_daily enable row level security;
alter table public.registry_runs enable row level security;
alter table public.audit_log enable row level security;
alter table public.idempotency_keys enable row level security;

drop policy if exists user_profiles_select_own on public.user_profiles;
create policy user_profiles_select_own on public.user_profiles
  for select to authenticated using (id = (select auth.uid()));

-- A document is readable by its owner and by the users it was shared with.
drop policy if exists documents_select_readable on public.documents;
create policy documents_select_readable on public.documents
  for select to authenticated using (
    user_id = (select auth.uid())
    or id in (select da.document_id from public.document_access da where da.user_id = (select auth.uid()))
  );

drop policy if exists document_access_select_involved on public.document_access;
create policy document_access_select_involved on public.document_access
  for select to authenticated using (user_id = (select auth.uid()) or granted_by = (select auth.uid()));

drop policy if exists chat_sessions_select_own on public.chat_sessions;
create policy chat_sessions_select_own on public.chat_sessions
  for select to authenticated using (user_id = (select auth.uid()));

drop policy if exists chat_messages_select_own on public.chat_messages;
create policy chat_messages_select_own on public.chat_messages
  for select to authenticated using (user_id = (select auth.uid()));

drop policy if exists usage_logs_select_own on public.usage_logs;
create policy usage_logs_select_own on public.usage_logs
  for select to authenticated using (user_id = (select auth.uid()));

drop policy if exists usage_daily_select_own on public.usage_daily;
create policy usage_daily_select_own on public.usage_daily
  for select to authenticated using (user_id = (select auth.uid()));

-- Views run with the caller's rights (a plain view would bypass RLS). Months are calendar months of
-- the UTC days in usage_daily, whatever the session's time zone.
create or replace view public.chat_sessions_summary with (security_invoker = true) as
  select s.id, s.user_id, s.title, s.message_count, s.last_message_at, s.created_at, s.updated_at, s.cost_usd
    from public.chat_sessions s;

create or replace view public.user_usage_summary with (security_invoker = true) as
  select d.user_id, date_trunc('month', d.day::timestamp)::date as month,
         sum(d.requests) as requests, sum(d.input_tokens) as input_tokens, sum(d.cached_tokens) as cached_tokens,
         sum(d.output_tokens) as output_tokens, sum(d.tool_calls) as tool_calls, sum(d.cost_usd) as cost_usd
    from public.usage_daily d
   group by d.user_id, date_trunc('month', d.day::timestamp);

revoke all on public.chat_sessions_summary, public.user_usage_summary from anon, authenticated;
grant select on public.chat_sessions_summary, public.user_usage_summary to authenticated, service_role;
