-- Admin reports, audited reads and the health report. Each function refuses a caller whose profile
-- is not an admin (private.require_admin: DC403; a disabled admin DC410) itself. Every read of
-- another user's documents, sessions or messages and every write leaves an audit_log row in the
-- same transaction as the read or write.

-- private.audit: one audit_log row for the acting admin.
create or replace function private.audit(p_actor uuid, p_action text, p_target_type text, p_target_id text,
                                         p_details jsonb) returns void
language sql volatile security definer set search_path = ''
as $$
  insert into public.audit_log (actor_id, action, target_type, target_id, details)
  values (p_actor, p_action, p_target_type, p_target_id, coalesce(p_details, '{}'::jsonb))
$$;

-- admin_usage_report: cost and tokens in [p_from, p_to] (UTC days; default this UTC month) from the
-- daily rollup, grouped by user, model, day (every day, zeros included), service or document (the
-- completed turns that cited it and its vector storage, charged to its owner). Rows are ordered by
-- cost, highest first (by day: by date).
create or replace function public.admin_usage_report(p_from date default null, p_to date default null,
                                                     p_group_by text default 'user') returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_admin public.user_profiles := private.require_admin();
  r record := private.utc_range(p_from, p_to);
  v_rows jsonb;
begin
  if p_group_by is null or p_group_by not in ('user', 'model', 'day', 'service', 'document') then
    perform private.fail('DC400', 'group_by must be user, model, day, service or document');
  end if;
  if p_group_by = 'document' then
    select coalesce(jsonb_agg(jsonb_build_object('key', c.document_id, 'label', d.name, 'user_id', d.user_id)
             || private.document_cost_json(c.turns, c.turn_cost_usd, c.storage_gb_days, c.storage_cost_usd)
             order by c.turn_cost_usd + c.storage_cost_usd desc, c.document_id), '[]'::jsonb)
      into v_rows
      from private.document_costs(null, r.v_from, r.v_to) c join public.documents d on d.id = c.document_id;
  elsif p_group_by = 'day' then
    select jsonb_agg(d.figures order by d.day) into v_rows from (
      select g.day, jsonb_build_object('key', g.day::date, 'label', g.day::date) || private.usage_figures(
               sum(ud.requests), sum(ud.input_tokens), sum(ud.cached_tokens), sum(ud.cache_write_tokens),
               sum(ud.output_tokens), sum(ud.reasoning_tokens), sum(ud.tool_calls), sum(ud.quantity),
               sum(ud.cost_usd)) as figures
        from (select generate_series(r.v_from::timestamp, r.v_to::timestamp, interval '1 day') as day) g
        left join public.usage_daily ud on ud.day = g.day::date
       group by g.day) d;
  else
    select coalesce(jsonb_agg(x.figures order by x.cost desc, x.key), '[]'::jsonb) into v_rows from (
      select jsonb_build_object('key', k.key, 'label', coalesce(k.label, k.key)) || private.usage_figures(
               sum(ud.requests), sum(ud.input_tokens), sum(ud.cached_tokens), sum(ud.cache_write_tokens),
               sum(ud.output_tokens), sum(ud.reasoning_tokens), sum(ud.tool_calls), sum(ud.quantity),
               sum(ud.cost_usd)) as figures, sum(ud.cost_usd) as cost, k.key
        from public.usage_daily ud
        cross join lateral (select case p_group_by when 'user' then ud.user_id::text
                                                   when 'model' then ud.model else ud.service end as key,
                                   case when p_group_by = 'user' then (select up.email from public.user_profiles up
                                                                        where up.id = ud.user_id) end as label) k
       where ud.day between r.v_from and r.v_to
       group by k.key, k.label) x;
  end if;
  return jsonb_build_object('from', r.v_from, 'to', r.v_to, 'group_by', p_group_by, 'rows', v_rows,
    'totals', (select private.usage_figures(sum(requests), sum(input_tokens), sum(cached_tokens),
                 sum(cache_write_tokens), sum(output_tokens), sum(reasoning_tokens), sum(tool_calls), sum(quantity),
                 sum(cost_usd)) from public.usage_daily where day between r.v_from and r.v_to));
end;
$$;
revoke execute on function public.admin_usage_report(date, date, text) from public, anon;
grant execute on function public.admin_usage_report(date, date, text) to authenticated;

-- admin_read_documents: every user's documents (or one user's, or those in one status), newest
-- first, keyset-paginated, without OpenAI ids. Audited as a read of the users whose documents it
-- shows, in the same call, unless the filter is the admin's own id.
create or replace function public.admin_read_documents(p_user_id uuid default null, p_status text default null,
                                                       p_limit integer default 20, p_cursor text default null)
returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_admin public.user_profiles := private.require_admin();
  v_limit integer := private.check_limit(p_limit);
  c record := private.decode_cursor(p_cursor);
  v_cursor_id uuid := private.cursor_uuid(c.id);
  v_page jsonb;
begin
  if p_status is not null and p_status not in ('uploading', 'processing', 'ready', 'failed', 'deleting', 'deleted', 'missing') then
    perform private.fail('DC400', 'unknown status filter');
  end if;
  v_page := private.page_of((
    select coalesce(jsonb_agg(jsonb_build_object('item', private.document_json(t.x, v_admin.id), 'ts', t.ts,
                                                 'id', t.id) order by t.ts desc, t.id desc), '[]'::jsonb)
      from (select d as x, d.created_at as ts, d.id from public.documents d
             where (p_user_id is null or d.user_id = p_user_id) and (p_status is null or d.status = p_status)
               and (c.ts is null or (d.created_at, d.id) < (c.ts, v_cursor_id))
             order by d.created_at desc, d.id desc limit v_limit + 1) t), v_limit);
  if p_user_id is distinct from v_admin.id then
    perform private.audit(v_admin.id, 'documents.read', 'user', p_user_id::text,
      jsonb_build_object('status', p_status, 'document_ids',
        (select coalesce(jsonb_agg(i -> 'id'), '[]'::jsonb) from jsonb_array_elements(v_page -> 'items') i)));
  end if;
  return v_page;
end;
$$;
revoke execute on function public.admin_read_documents(uuid, text, integer, text) from public, anon;
grant execute on function public.admin_read_documents(uuid, text, integer, text) to authenticated;

-- admin_read_document: one document of any user (DC404 when there is none) with the users it is
-- shared with, without OpenAI ids; audited in the same call when it is another user's.
create or replace function public.admin_read_document(p_document_id uuid) returns jsonb
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
  if d.user_id <> v_admin.id then
    perform private.audit(v_admin.id, 'document.read', 'document', d.id::text,
                          jsonb_build_object('owner_id', d.user_id));
  end if;
  return private.document_json(d, v_admin.id) || jsonb_build_object('shared_with',
    (select coalesce(jsonb_agg(a.user_id order by a.user_id), '[]'::jsonb)
       from public.document_access a where a.document_id = d.id));
end;
$$;
revoke execute on function public.admin_read_document(uuid) from public, anon;
grant execute on function public.admin_read_document(uuid) to authenticated;

-- What an earlier version of this file defined: a delete that handed OpenAI ids to a user-API
-- caller and finished the delete itself (no-ops on a new database).
drop function if exists public.admin_finish_document_delete(uuid);
drop function if exists private.document_store_ids(public.documents);

-- admin_begin_document_delete: an admin starts the owner's complete delete of any document (DC404
-- when there is none or it is deleted): marks it deleting and audits it, in one call. Returns the
-- document (with owner_id) and no OpenAI ids; the backend then finishes it as the owner's delete
-- does, acting for the owner (document_delete_targets, finish_document_delete), and the registry
-- refresh finishes a delete nobody finished.
create or replace function public.admin_begin_document_delete(p_document_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_admin public.user_profiles := private.require_admin();
  d public.documents;
  v_before text;
begin
  select * into d from public.documents where id = p_document_id and status <> 'deleted' for update;
  if not found then
    perform private.fail('DC404', 'document not found');
  end if;
  v_before := d.status;
  update public.documents set status = 'deleting', updated_at = now() where id = d.id returning * into d;
  perform private.audit(v_admin.id, 'document.delete', 'document', d.id::text,
    jsonb_build_object('owner_id', d.user_id, 'before', jsonb_build_object('status', v_before),
                       'after', jsonb_build_object('status', d.status)));
  return private.document_json(d, v_admin.id);
end;
$$;
revoke execute on function public.admin_begin_document_delete(uuid) from public, anon;
grant execute on function public.admin_begin_document_delete(uuid) to authenticated;

-- admin_read_sessions: sessions (one user's or everyone's), newest activity first, with message
-- counts and what they cost, without OpenAI ids; audited in the same call unless the filter is the
-- admin's own id.
create or replace function public.admin_read_sessions(p_user_id uuid default null, p_limit integer default 20,
                                                      p_cursor text default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_admin public.user_profiles := private.require_admin();
  v_limit integer := private.check_limit(p_limit);
  c record := private.decode_cursor(p_cursor);
  v_cursor_id uuid := private.cursor_uuid(c.id);
  v_page jsonb;
begin
  v_page := private.page_of((
    select coalesce(jsonb_agg(jsonb_build_object('item', (private.session_json(t.x) - 'openai_conversation_id')
                                                         || jsonb_build_object('user_id', (t.x).user_id),
                                                 'ts', t.ts, 'id', t.id) order by t.ts desc, t.id desc), '[]'::jsonb)
      from (select s as x, s.updated_at as ts, s.id from public.chat_sessions s
             where (p_user_id is null or s.user_id = p_user_id)
               and (c.ts is null or (s.updated_at, s.id) < (c.ts, v_cursor_id))
             order by s.updated_at desc, s.id desc limit v_limit + 1) t), v_limit);
  if p_user_id is distinct from v_admin.id then
    perform private.audit(v_admin.id, 'sessions.read', 'user', p_user_id::text, jsonb_build_object('session_ids',
      (select coalesce(jsonb_agg(i -> 'id'), '[]'::jsonb) from jsonb_array_elements(v_page -> 'items') i)));
  end if;
  return v_page;
end;
$$;
revoke execute on function public.admin_read_sessions(uuid, integer, text) from public, anon;
grant execute on function public.admin_read_sessions(uuid, integer, text) to authenticated;

-- An earlier version took the content setting as an argument a caller could flip (no-op on a new
-- database).
drop function if exists public.admin_list_session_messages(uuid, boolean, integer, text);

-- private.admin_session_messages: any session's messages for the admin p_admin, oldest first,
-- keyset-paginated (DC404 for an unknown session). Content and citations only when p_content
-- (metadata, tokens and costs always). Audits the read when the session is another user's.
create or replace function private.admin_session_messages(p_admin public.user_profiles, p_session_id uuid,
                                                          p_content boolean, p_limit integer, p_cursor text)
returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_limit integer := private.check_limit(p_limit);
  c record := private.decode_cursor(p_cursor);
  v_cursor_id uuid := private.cursor_uuid(c.id);
  v_owner uuid;
begin
  select user_id into v_owner from public.chat_sessions where id = p_session_id;
  if not found then
    perform private.fail('DC404', 'session not found');
  end if;
  if v_owner <> p_admin.id then
    perform private.audit(p_admin.id, 'session.messages.read', 'session', p_session_id::text,
                          jsonb_build_object('owner_id', v_owner, 'content', p_content));
  end if;
  return private.page_of((
    select coalesce(jsonb_agg(jsonb_build_object('item', case when p_content then private.message_json(t.x)
               else private.message_json(t.x) || jsonb_build_object('content', null, 'citations', null) end
               || jsonb_build_object('content_withheld', not p_content),
             'ts', t.ts, 'id', t.id) order by t.ts, t.id), '[]'::jsonb)
      from (select m as x, m.created_at as ts, m.id from public.chat_messages m
             where m.session_id = p_session_id and (c.ts is null or (m.created_at, m.id) > (c.ts, v_cursor_id))
             order by m.created_at, m.id limit v_limit + 1) t), v_limit);
end;
$$;

-- admin_list_session_messages (user API): any session's messages without their content and
-- citations (metadata, tokens and costs stay), whatever the caller passes; audited. Content is
-- only ever read through the backend API below.
create or replace function public.admin_list_session_messages(p_session_id uuid, p_limit integer default 50,
                                                              p_cursor text default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
begin
  return private.admin_session_messages(private.require_admin(), p_session_id, false, p_limit, p_cursor);
end;
$$;
revoke execute on function public.admin_list_session_messages(uuid, integer, text) from public, anon;
grant execute on function public.admin_list_session_messages(uuid, integer, text) to authenticated;

-- admin_read_session_messages (backend API): the same with content and citations, for the acting
-- admin p_user_id (DC403 unless an active admin; DC410 when disabled). The backend calls it only
-- when ADMIN_CAN_READ_MESSAGES is on, so with the setting off no direct call reaches content.
create or replace function public.admin_read_session_messages(p_user_id uuid, p_session_id uuid,
                                                              p_limit integer default 50,
                                                              p_cursor text default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_admin public.user_profiles := private.backend_profile(p_user_id);
begin
  if v_admin.role <> 'admin' then
    perform private.fail('DC403', 'admin role required');
  end if;
  return private.admin_session_messages(v_admin, p_session_id, true, p_limit, p_cursor);
end;
$$;
revoke execute on function public.admin_read_session_messages(uuid, uuid, integer, text) from public, anon, authenticated;
grant execute on function public.admin_read_session_messages(uuid, uuid, integer, text) to service_role;

-- admin_health_report: what the health check needs from the database in one call: the migration
-- files the caller ships ([{filename, sha256}]) that are not applied or differ from what was
-- applied, the last registry run, and pending turns older than p_pending_seconds.
create or replace function public.admin_health_report(p_migrations jsonb, p_pending_seconds integer) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_admin public.user_profiles := private.require_admin();
begin
  if p_migrations is null or jsonb_typeof(p_migrations) <> 'array' then
    perform private.fail('DC400', 'migrations must be an array');
  end if;
  if p_pending_seconds is null or p_pending_seconds < 1 then
    perform private.fail('DC400', 'pending_seconds must be positive');
  end if;
  return jsonb_build_object(
    'now', now(),
    'migrations_pending', (select coalesce(jsonb_agg(f.filename order by f.filename), '[]'::jsonb)
                             from jsonb_to_recordset(p_migrations) as f(filename text, sha256 text)
                             left join private.schema_migrations sm on sm.filename = f.filename
                            where sm.filename is null or sm.sha256 <> f.sha256),
    'last_registry_run', (select to_jsonb(r) - 'lease_until' from public.registry_runs r
                           order by r.started_at desc, r.id desc limit 1),
    'stale_pending_turns', (select count(*) from public.chat_messages
                             where status = 'pending' and created_at < now() - make_interval(secs => p_pending_seconds)),
    'oldest_pending_turn_at', (select min(created_at) from public.chat_messages
                                where status = 'pending' and created_at < now() - make_interval(secs => p_pending_seconds)));
end;
$$;
revoke execute on function public.admin_health_report(jsonb, integer) from public, anon;
grant execute on function public.admin_health_report(jsonb, integer) to authenticated;
