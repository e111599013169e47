-- Chat sessions and their messages: user API (granted to authenticated). The chat turns themselves
-- are backend API, in 071_chat_turns.sql.

-- Documents a session or turn may search: readable, searchable (processing or ready), and within the
-- narrowing list when one is given. An id in the list that the caller cannot read is DC404.
create or replace function private.allowed_documents(p_uid uuid, p_narrow jsonb) returns jsonb
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_ids uuid[];
  v_bad integer;
begin
  if p_narrow is not null then
    if jsonb_typeof(p_narrow) <> 'array' or jsonb_array_length(p_narrow) > 100 then
      perform private.fail('DC400', 'document_ids must be an array of at most 100 ids');
    end if;
    begin
      select array_agg(distinct value::uuid) into v_ids from jsonb_array_elements_text(p_narrow);
    exception when invalid_text_representation then
      perform private.fail('DC400', 'document_ids must hold document ids');
    end;
    select count(*) into v_bad from unnest(coalesce(v_ids, '{}'::uuid[])) as i(id)
     where i.id not in (select private.readable_document_ids(
                          p_uid, array['uploading', 'processing', 'ready', 'failed', 'deleting', 'missing']));
    if v_bad > 0 then
      perform private.fail('DC404', 'document not found');
    end if;
  end if;
  return (
    select coalesce(jsonb_agg(d.id order by d.created_at), '[]'::jsonb)
      from public.documents d
     where d.id in (select private.readable_document_ids(p_uid))
       and (v_ids is null or d.id = any (v_ids)));
end;
$$;

-- Old user-API turn functions (the turns are backend API now).
drop function if exists public.begin_chat_turn(text, numeric, text, uuid, jsonb);
drop function if exists public.finish_chat_turn(uuid, text, jsonb, text, text, jsonb, numeric, integer, jsonb, text);
drop function if exists public.fail_chat_turn(uuid, text, text, jsonb, text);

-- create_session: a new session, optionally narrowed to some of the caller's documents.
create or replace function public.create_session(p_title text default null, p_document_ids jsonb default null)
returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  s public.chat_sessions;
begin
  perform private.allowed_documents(v_uid, p_document_ids);
  insert into public.chat_sessions (user_id, title, document_ids)
  values (v_uid, case when p_title is null then 'New chat' else private.clean_text(p_title, 'title', 200) end,
          p_document_ids)
  returning * into s;
  return private.session_json(s);
end;
$$;
revoke execute on function public.create_session(text, jsonb) from public, anon;
grant execute on function public.create_session(text, jsonb) to authenticated;

create or replace function public.get_session(p_session_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  s public.chat_sessions;
begin
  select * into s from public.chat_sessions where id = p_session_id and user_id = v_uid;
  if not found then
    perform private.fail('DC404', 'session not found');
  end if;
  return private.session_json(s);
end;
$$;
revoke execute on function public.get_session(uuid) from public, anon;
grant execute on function public.get_session(uuid) to authenticated;

-- The caller's sessions are listed (and searched) by list_my_sessions in 035_sessions_search.sql.
drop function if exists public.list_sessions(integer, text);

create or replace function public.rename_session(p_session_id uuid, p_title text) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  s public.chat_sessions := private.owned_session(p_session_id, v_uid);
begin
  update public.chat_sessions set title = private.clean_text(p_title, 'title', 200), updated_at = now()
   where id = s.id returning * into s;
  return private.session_json(s);
end;
$$;
revoke execute on function public.rename_session(uuid, text) from public, anon;
grant execute on function public.rename_session(uuid, text) to authenticated;

-- delete_session: removes the session and its messages (usage rows stay, unlinked). A session with
-- a turn still pending cannot be deleted (DC409): the turn's settlement must find it, so its cost is
-- recorded. Returns the OpenAI conversation id so the caller can delete it there too.
create or replace function public.delete_session(p_session_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  s public.chat_sessions := private.owned_session(p_session_id, v_uid);
begin
  if exists (select 1 from public.chat_messages where session_id = s.id and status = 'pending') then
    perform private.fail('DC409', 'a turn of this session is still running');
  end if;
  delete from public.chat_sessions where id = s.id;
  return jsonb_build_object('id', s.id, 'openai_conversation_id', s.openai_conversation_id);
end;
$$;
revoke execute on function public.delete_session(uuid) from public, anon;
grant execute on function public.delete_session(uuid) to authenticated;

create or replace function private.message_json(m public.chat_messages) returns jsonb
language sql stable set search_path = ''
as $$
  select jsonb_build_object(
    'id', m.id, 'session_id', m.session_id, 'role', m.role, 'status', m.status, 'content', m.content,
    'citations', m.citations, 'model', m.model, 'input_tokens', m.input_tokens, 'cached_tokens', m.cached_tokens,
    'cache_write_tokens', m.cache_write_tokens, 'output_tokens', m.output_tokens,
    'reasoning_tokens', m.reasoning_tokens, 'file_search_calls', m.file_search_calls, 'cost_usd', m.cost_usd,
    'incomplete_reason', m.incomplete_reason, 'latency_ms', m.latency_ms, 'error_code', m.error_code,
    'created_at', m.created_at, 'completed_at', m.completed_at)
$$;

-- list_session_messages: a session's history, oldest first, keyset-paginated.
create or replace function public.list_session_messages(p_session_id uuid, p_limit integer default 50,
                                                        p_cursor text default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  v_limit integer := private.check_limit(p_limit);
  c record := private.decode_cursor(p_cursor);
  v_cursor_id uuid := private.cursor_uuid(c.id);
begin
  if not exists (select 1 from public.chat_sessions where id = p_session_id and user_id = v_uid) then
    perform private.fail('DC404', 'session not found');
  end if;
  return private.page_of((
    select coalesce(jsonb_agg(jsonb_build_object('item', private.message_json(t.x), 'ts', t.ts, 'id', t.id)
                              order by t.ts, t.id), '[]'::jsonb)
      from (select m as x, m.created_at as ts, m.id from public.chat_messages m
             where m.session_id = p_session_id and (c.ts is null or (m.created_at, m.id) > (c.ts, v_cursor_id))
             order by m.created_at, m.id limit v_limit + 1) t), v_limit);
end;
$$;
revoke execute on function public.list_session_messages(uuid, integer, text) from public, anon;
grant execute on function public.list_session_messages(uuid, integer, text) to authenticated;

