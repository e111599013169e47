-- Admin reads and writes (user API: each function refuses a caller whose profile is not an admin,
-- DC403, itself). Writes leave an audit_log row in the same transaction. Reads of other users'
-- documents, sessions and messages, the usage report and the health report are in
-- 055_admin_reports.sql, each audited by the call that reads.

-- What an earlier version of this file defined and 055_admin_reports.sql supersedes: reads that
-- skipped the audit, and the usage and health reports (no-ops on a new database).
drop function if exists public.admin_list_documents(uuid, text, integer, text);
drop function if exists public.admin_get_document(uuid);
drop function if exists public.admin_list_sessions(uuid, integer, text);
drop function if exists public.admin_usage(date, date, uuid);
drop function if exists public.admin_usage_rows(date, date, integer, jsonb);
drop function if exists public.admin_health();

-- private.admin_user_json: a user as the admin lists show them; the spend is this UTC month's
-- (from the rollup), whatever the session's time zone.

create or replace function private.admin_user_json(u public.user_profiles) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select jsonb_build_object('id', u.id, 'email', u.email, 'role', u.role, 'disabled', u.disabled,
    'monthly_budget_usd', u.monthly_budget_usd, 'created_at', u.created_at, 'last_seen_at', u.last_seen_at,
    'documents', (select count(*) from public.documents d where d.user_id = u.id and d.status <> 'deleted'),
    'sessions', (select count(*) from public.chat_sessions s where s.user_id = u.id),
    'cost_this_month_usd', (select coalesce(sum(cost_usd), 0) from public.usage_daily ud
                             where ud.user_id = u.id
                               and ud.day >= private.utc_month_start(private.utc_today())))
$$;

-- admin_list_users: users newest first, optionally those whose email contains p_search (LIKE
-- wildcards taken literally), keyset-paginated.
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

-- admin_get_user: one user (DC404 when there is none) with their budget this UTC month.
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
  return private.admin_user_json(u) || jsonb_build_object('budget', private.user_budget(u));
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

-- admin_list_audit: the audit log newest first, keyset-paginated.
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
