-- Admin reads and writes. Each function refuses a caller whose profile is not an admin (DC403)
-- itself; writes leave an audit_log row in the same transaction.

create or replace function private.admin_user_json(u public.user_profiles) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select jsonb_build_object('id', u.id, 'email', u.email, 'role', u.role, 'disabled', u.disabled,
    'monthly_budget_usd', u.monthly_budget_usd, 'created_at', u.created_at, 'last_seen_at', u.last_seen_at,
    'documents', (select count(*) from public.documents d where d.user_id = u.id and d.status <> 'deleted'),
    'sessions', (select count(*) from public.chat_sessions s where s.user_id = u.id),
    'cost_this_month_usd', (select coalesce(sum(cost_usd), 0) from public.usage_daily ud
                             where ud.user_id = u.id and ud.day >= private.utc_month_start(now())))
$$;

create or replace function public.admin_list_users(p_search text default null, p_limit integer default 20,
                                                   p_cursor text default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_admin public.user_profiles := private.require_admin();
  v_limit integer := private.check_limit(p_limit);
  c record := private.decode_cursor(p_cursor);
  v_cursor_id uuid := private.cursor_uuid(c.id);
begin
  if p_search is not null and char_length(p_search) > 200 then
    perform private.fail('DC400', 'search is longer than 200 characters');
  end if;
  return private.page_of((
    select coalesce(jsonb_agg(jsonb_build_object('item', private.admin_user_json(t.x), 'ts', t.ts, 'id', t.id)
                              order by t.ts desc, t.id desc), '[]'::jsonb)
      from (select u as x, u.created_at as ts, u.id from public.user_profiles u
             where (p_search is null or u.email ilike '%' || replace(replace(p_search, '%', '\%'), '_', '\_') || '%')
               and (c.ts is null or (u.created_at, u.id) < (c.ts, v_cursor_id))
             order by u.created_at desc, u.id desc limit v_limit + 1) t), v_limit);
end;
$$;
revoke execute on function public.admin_list_users(text, integer, text) from public, anon;
grant execute on function public.admin_list_users(text, integer, text) to authenticated;

create or replace function public.admin_get_user(p_user_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_admin public.user_profiles := private.require_admin();
  u public.user_profiles;
begin
  select * into u from public.user_profiles where id = p_user_id;
  if not found then
    perform private.fail('DC404', 'user not found');
  end if;
  return private.admin_user_json(u) || jsonb_build_object('budget', private.budget_json(u));
end;
$$;
revoke execute on function public.admin_get_user(uuid) from public, anon;
grant execute on function public.admin_get_user(uuid) to authenticated;

-- admin_update_user: change role, monthly budget or disabled. Guarantees: an admin cannot demote or
-- disable themselves, and at least one active admin always remains (DC409 otherwise) even when two
-- admins demote each other at once: every admin change takes one transaction-level advisory lock and
-- then re-reads the caller's role and the admins left, so concurrent changes are serialised.
create or replace function public.admin_update_user(p_user_id uuid, p_role text default null,
                                                    p_monthly_budget_usd numeric default null,
                                                    p_disabled boolean default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_admin public.user_profiles := private.require_admin();
  u public.user_profiles;
  v_before jsonb;
begin
  if p_role is null and p_monthly_budget_usd is null and p_disabled is null then
    perform private.fail('DC400', 'nothing to change');
  end if;
  if p_role is not null and p_role not in ('user', 'admin') then
    perform private.fail('DC400', 'role must be user or admin');
  end if;
  if p_monthly_budget_usd is not null then
    perform private.checked_usd(p_monthly_budget_usd, 'monthly_budget_usd');
  end if;
  if p_user_id = v_admin.id and (p_role = 'user' or p_disabled) then
    perform private.fail('DC400', 'admins cannot demote or disable themselves');
  end if;
  perform pg_advisory_xact_lock(hashtextextended('docchat.admin_update_user', 0));
  -- Read again after the lock: a concurrent change may have demoted the caller meanwhile.
  if not exists (select 1 from public.user_profiles where id = v_admin.id and role = 'admin' and not disabled) then
    perform private.fail('DC403', 'admin role required');
  end if;
  select * into u from public.user_profiles where id = p_user_id for update;
  if not found then
    perform private.fail('DC404', 'user not found');
  end if;
  if u.role = 'admin' and not u.disabled and (p_role = 'user' or p_disabled)
     and not exists (select 1 from public.user_profiles
                      where role = 'admin' and not disabled and id <> p_user_id) then
    perform private.fail('DC409', 'the last admin cannot be demoted or disabled');
  end if;
  v_before := jsonb_build_object('role', u.role, 'monthly_budget_usd', u.monthly_budget_usd, 'disabled', u.disabled);
  update public.user_profiles set role = coalesce(p_role, role),
         monthly_budget_usd = coalesce(p_monthly_budget_usd, monthly_budget_usd),
         disabled = coalesce(p_disabled, disabled)
   where id = p_user_id returning * into u;
  insert into public.audit_log (actor_id, action, target_type, target_id, details)
  values (v_admin.id, 'user.update', 'user', p_user_id::text,
          jsonb_build_object('before', v_before, 'after', jsonb_build_object('role', u.role,
            'monthly_budget_usd', u.monthly_budget_usd, 'disabled', u.disabled)));
  return private.admin_user_json(u);
end;
$$;
revoke execute on function public.admin_update_user(uuid, text, numeric, boolean) from public, anon;
grant execute on function public.admin_update_user(uuid, text, numeric, boolean) to authenticated;

create or replace function public.admin_list_documents(p_user_id uuid default null, p_status text default null,
                                                       p_limit integer default 20, p_cursor text default null)
returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_admin public.user_profiles := private.require_admin();
  v_limit integer := private.check_limit(p_limit);
  c record := private.decode_cursor(p_cursor);
  v_cursor_id uuid := private.cursor_uuid(c.id);
begin
  if p_status is not null and p_status not in ('uploading', 'processing', 'ready', 'failed', 'deleting', 'deleted', 'missing') then
    perform private.fail('DC400', 'unknown status filter');
  end if;
  return private.page_of((
    select coalesce(jsonb_agg(jsonb_build_object('item', private.document_json(t.x, v_admin.id), 'ts', t.ts,
                                                 'id', t.id) order by t.ts desc, t.id desc), '[]'::jsonb)
      from (select d as x, d.created_at as ts, d.id from public.documents d
             where (p_user_id is null or d.user_id = p_user_id) and (p_status is null or d.status = p_status)
               and (c.ts is null or (d.created_at, d.id) < (c.ts, v_cursor_id))
             order by d.created_at desc, d.id desc limit v_limit + 1) t), v_limit);
end;
$$;
revoke execute on function public.admin_list_documents(uuid, text, integer, text) from public, anon;
grant execute on function public.admin_list_documents(uuid, text, integer, text) to authenticated;

create or replace function public.admin_get_document(p_document_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_admin public.user_profiles := private.require_admin();
  d public.documents;
begin
  select * into d from public.documents where id = p_document_id;
  if not found then
    perform private.fail('DC404', 'document not found');
  end if;
  return private.document_json(d, v_admin.id) || jsonb_build_object('shared_with',
    (select coalesce(jsonb_agg(a.user_id), '[]'::jsonb) from public.document_access a where a.document_id = d.id));
end;
$$;
revoke execute on function public.admin_get_document(uuid) from public, anon;
grant execute on function public.admin_get_document(uuid) to authenticated;

create or replace function public.admin_list_sessions(p_user_id uuid default null, p_limit integer default 20,
                                                      p_cursor text default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_admin public.user_profiles := private.require_admin();
  v_limit integer := private.check_limit(p_limit);
  c record := private.decode_cursor(p_cursor);
  v_cursor_id uuid := private.cursor_uuid(c.id);
begin
  return private.page_of((
    select coalesce(jsonb_agg(jsonb_build_object('item', private.session_json(t.x) || jsonb_build_object('user_id', (t.x).user_id),
                                                 'ts', t.ts, 'id', t.id) order by t.ts desc, t.id desc), '[]'::jsonb)
      from (select s as x, s.updated_at as ts, s.id from public.chat_sessions s
             where (p_user_id is null or s.user_id = p_user_id)
               and (c.ts is null or (s.updated_at, s.id) < (c.ts, v_cursor_id))
             order by s.updated_at desc, s.id desc limit v_limit + 1) t), v_limit);
end;
$$;
revoke execute on function public.admin_list_sessions(uuid, integer, text) from public, anon;
grant execute on function public.admin_list_sessions(uuid, integer, text) to authenticated;

-- admin_usage: every user's usage (or one user's) by model, service and day, plus the top users.
create or replace function public.admin_usage(p_from date default null, p_to date default null,
                                              p_user_id uuid default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_admin public.user_profiles := private.require_admin();
  r record := private.usage_range(p_from, p_to);
begin
  return private.usage_report(p_user_id, r.v_from, r.v_to) || jsonb_build_object('by_user', (
    select coalesce(jsonb_agg(x order by (x ->> 'cost_usd')::numeric desc), '[]'::jsonb) from (
      select jsonb_build_object('user_id', ud.user_id, 'email', up.email, 'requests', sum(ud.requests),
             'input_tokens', sum(ud.input_tokens), 'output_tokens', sum(ud.output_tokens),
             'cost_usd', sum(ud.cost_usd)) as x
        from public.usage_daily ud left join public.user_profiles up on up.id = ud.user_id
       where ud.day between r.v_from and r.v_to and (p_user_id is null or ud.user_id = p_user_id)
       group by ud.user_id, up.email
       order by sum(ud.cost_usd) desc limit 100) t));
end;
$$;
revoke execute on function public.admin_usage(date, date, uuid) from public, anon;
grant execute on function public.admin_usage(date, date, uuid) to authenticated;

-- admin_usage_rows: daily rollup rows for a CSV export, keyset-paginated by (day, user, service, model).
create or replace function public.admin_usage_rows(p_from date default null, p_to date default null,
                                                   p_limit integer default 100, p_after jsonb default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_admin public.user_profiles := private.require_admin();
  r record := private.usage_range(p_from, p_to);
  v_limit integer := private.check_limit(p_limit);
  v_rows jsonb;
begin
  if p_after is not null and jsonb_typeof(p_after) <> 'object' then
    perform private.fail('DC400', 'after must be an object');
  end if;
  select coalesce(jsonb_agg(to_jsonb(x) order by x.day, x.user_id, x.service, x.model), '[]'::jsonb) into v_rows from (
    select ud.day, ud.user_id, up.email, ud.service, ud.model, ud.requests, ud.input_tokens, ud.cached_tokens,
           ud.output_tokens, ud.tool_calls, ud.quantity, ud.cost_usd
      from public.usage_daily ud left join public.user_profiles up on up.id = ud.user_id
     where ud.day between r.v_from and r.v_to
       and (p_after is null or (ud.day, ud.user_id, ud.service, ud.model) >
            ((p_after ->> 'day')::date, (p_after ->> 'user_id')::uuid, p_after ->> 'service', p_after ->> 'model'))
     order by ud.day, ud.user_id, ud.service, ud.model limit v_limit) x;
  return jsonb_build_object('items', v_rows);
end;
$$;
revoke execute on function public.admin_usage_rows(date, date, integer, jsonb) from public, anon;
grant execute on function public.admin_usage_rows(date, date, integer, jsonb) to authenticated;

create or replace function public.admin_list_audit(p_limit integer default 50, p_cursor text default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_admin public.user_profiles := private.require_admin();
  v_limit integer := private.check_limit(p_limit);
  c record := private.decode_cursor(p_cursor);
  v_cursor_id bigint;
begin
  begin
    v_cursor_id := c.id::bigint;
  exception when invalid_text_representation then
    perform private.fail('DC400', 'invalid cursor');
  end;
  return private.page_of((
    select coalesce(jsonb_agg(jsonb_build_object('item', jsonb_build_object('id', a.id, 'actor_id', a.actor_id,
             'action', a.action, 'target_type', a.target_type, 'target_id', a.target_id, 'details', a.details,
             'created_at', a.created_at), 'ts', a.created_at, 'id', a.id) order by a.created_at desc, a.id desc), '[]'::jsonb)
      from (select * from public.audit_log x
             where c.ts is null or (x.created_at, x.id) < (c.ts, v_cursor_id)
             order by x.created_at desc, x.id desc limit v_limit + 1) a), v_limit);
end;
$$;
revoke execute on function public.admin_list_audit(integer, text) from public, anon;
grant execute on function public.admin_list_audit(integer, text) to authenticated;

-- admin_health: what an operator checks first: documents by status, stuck uploads and turns, the
-- last registry run.
create or replace function public.admin_health() returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_admin public.user_profiles := private.require_admin();
begin
  return jsonb_build_object(
    'users', (select count(*) from public.user_profiles),
    'documents_by_status', (select coalesce(jsonb_object_agg(status, n), '{}'::jsonb)
                              from (select status, count(*) as n from public.documents group by status) s),
    'stuck_uploads', (select count(*) from public.documents
                       where status in ('uploading', 'deleting') and updated_at < now() - interval '15 minutes'),
    'stuck_turns', (select count(*) from public.chat_messages
                     where status = 'pending' and created_at < now() - interval '15 minutes'),
    'last_registry_run', (select to_jsonb(r) - 'lease_until' from public.registry_runs r
                           order by started_at desc limit 1));
end;
$$;
revoke execute on function public.admin_health() from public, anon;
grant execute on function public.admin_health() to authenticated;
