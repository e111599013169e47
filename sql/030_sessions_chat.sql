-- Chat sessions, their messages, and chat turns (begin: checks + user message + reservation;
-- finish: answer, citations, usage rows and cost; fail: the error is recorded, not lost).

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
     where not exists (select 1 from public.documents d where d.id = i.id and d.status <> 'deleted'
                         and (d.user_id = p_uid or exists (select 1 from public.document_access a
                                                            where a.document_id = d.id and a.user_id = p_uid)));
    if v_bad > 0 then
      perform private.fail('DC404', 'document not found');
    end if;
  end if;
  return (
    select coalesce(jsonb_agg(d.id order by d.created_at), '[]'::jsonb)
      from public.documents d
     where d.status in ('processing', 'ready')
       and (v_ids is null or d.id = any (v_ids))
       and (d.user_id = p_uid or exists (select 1 from public.document_access a
                                          where a.document_id = d.id and a.user_id = p_uid)));
end;
$$;

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

-- list_sessions: the caller's sessions by last activity, with message counts; keyset-paginated.
create or replace function public.list_sessions(p_limit integer default 20, p_cursor text default null)
returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  v_limit integer := private.check_limit(p_limit);
  c record := private.decode_cursor(p_cursor);
  v_cursor_id uuid := private.cursor_uuid(c.id);
begin
  return private.page_of((
    select coalesce(jsonb_agg(jsonb_build_object('item', private.session_json(t.x), 'ts', t.ts, 'id', t.id)
                              order by t.ts desc, t.id desc), '[]'::jsonb)
      from (select s as x, s.updated_at as ts, s.id from public.chat_sessions s
             where s.user_id = v_uid and (c.ts is null or (s.updated_at, s.id) < (c.ts, v_cursor_id))
             order by s.updated_at desc, s.id desc limit v_limit + 1) t), v_limit);
end;
$$;
revoke execute on function public.list_sessions(integer, text) from public, anon;
grant execute on function public.list_sessions(integer, text) to authenticated;

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

-- delete_session: removes the session and its messages (usage rows stay, unlinked). Returns the
-- OpenAI conversation id so the caller can delete it there too.
create or replace function public.delete_session(p_session_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  s public.chat_sessions := private.owned_session(p_session_id, v_uid);
begin
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
    'citations', m.citations, 'model', m.model, 'openai_response_id', m.openai_response_id,
    'input_tokens', m.input_tokens, 'cached_tokens', m.cached_tokens, 'output_tokens', m.output_tokens,
    'reasoning_tokens', m.reasoning_tokens, 'file_search_calls', m.file_search_calls, 'cost_usd', m.cost_usd,
    'latency_ms', m.latency_ms, 'error_code', m.error_code, 'error_message', m.error_message,
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

-- begin_chat_turn: one call before OpenAI is asked. Checks the account, the session (or opens one),
-- the documents, and the budget: committed spend this month + running reservations + this turn's
-- worst-case cost must fit. The profile row is locked, so concurrent turns of one user cannot
-- overspend together. Stores the user's message and a pending assistant message holding the
-- reservation. Returns what the turn needs to call OpenAI.
create or replace function public.begin_chat_turn(p_message text, p_max_cost_usd numeric, p_request_id text,
                                                  p_session_id uuid default null,
                                                  p_document_ids jsonb default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.active_profile();
  s public.chat_sessions;
  v_docs jsonb;
  v_budget jsonb;
  v_user_msg uuid;
  v_asst_msg uuid;
begin
  if p_message is null or btrim(p_message) = '' then
    perform private.fail('DC400', 'message is required');
  end if;
  if char_length(p_message) > 20000 then
    perform private.fail('DC400', 'message is longer than 20000 characters');
  end if;
  if p_max_cost_usd is null or p_max_cost_usd < 0 then
    perform private.fail('DC400', 'max_cost_usd must be zero or more');
  end if;
  if p_request_id is null or char_length(p_request_id) not between 1 and 200 then
    perform private.fail('DC400', 'request_id is required');
  end if;
  select * into p from public.user_profiles where id = p.id for update;

  if p_session_id is null then
    insert into public.chat_sessions (user_id, title, document_ids)
    values (p.id, left(regexp_replace(btrim(p_message), '[[:cntrl:][:space:]]+', ' ', 'g'), 60), p_document_ids)
    returning * into s;
  else
    s := private.owned_session(p_session_id, p.id);
  end if;
  v_docs := private.allowed_documents(p.id, coalesce(p_document_ids, s.document_ids));

  v_budget := private.budget_json(p);
  if (v_budget ->> 'spent_usd')::numeric + (v_budget ->> 'reserved_usd')::numeric + p_max_cost_usd
     > p.monthly_budget_usd then
    perform private.fail('DC402', 'monthly budget exhausted');
  end if;

  insert into public.chat_messages (session_id, user_id, role, status, content, request_id)
  values (s.id, p.id, 'user', 'complete', p_message, p_request_id) returning id into v_user_msg;
  insert into public.chat_messages (session_id, user_id, role, status, reserved_usd, request_id, created_at)
  values (s.id, p.id, 'assistant', 'pending', p_max_cost_usd, p_request_id, clock_timestamp())
  returning id into v_asst_msg;
  update public.chat_sessions set message_count = message_count + 2, last_message_at = now(), updated_at = now()
   where id = s.id returning * into s;

  return jsonb_build_object('session', private.session_json(s), 'user_message_id', v_user_msg,
    'assistant_message_id', v_asst_msg, 'conversation_id', s.openai_conversation_id,
    'vector_store_id', p.vector_store_id, 'document_ids', v_docs, 'budget', private.budget_json(p));
end;
$$;
revoke execute on function public.begin_chat_turn(text, numeric, text, uuid, jsonb) from public, anon;
grant execute on function public.begin_chat_turn(text, numeric, text, uuid, jsonb) to authenticated;

-- finish_chat_turn: the answer, its citations, its usage rows and cost, in one transaction. The
-- usage rows' costs must add up to p_cost_usd. Finishing the same turn again with the same response
-- id returns the stored message (a retry is not billed twice); any other repeat is DC409.
create or replace function public.finish_chat_turn(p_message_id uuid, p_content text, p_citations jsonb,
                                                   p_response_id text, p_model text, p_usage jsonb,
                                                   p_cost_usd numeric, p_latency_ms integer,
                                                   p_usage_rows jsonb, p_conversation_id text default null)
returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.active_profile();
  m public.chat_messages;
  s public.chat_sessions;
  v_total numeric;
begin
  select * into m from public.chat_messages
   where id = p_message_id and user_id = p.id and role = 'assistant' for update;
  if not found then
    perform private.fail('DC404', 'message not found');
  end if;
  if m.status = 'complete' and m.openai_response_id = p_response_id then
    return jsonb_build_object('message', private.message_json(m), 'budget', private.budget_json(p));
  end if;
  if m.status <> 'pending' then
    perform private.fail('DC409', 'turn is already finished');
  end if;
  if p_content is null or p_response_id is null or p_model is null then
    perform private.fail('DC400', 'content, response_id and model are required');
  end if;
  if p_citations is null or jsonb_typeof(p_citations) <> 'array' then
    perform private.fail('DC400', 'citations must be an array');
  end if;
  if p_usage is null or jsonb_typeof(p_usage) <> 'object' then
    perform private.fail('DC400', 'usage must be an object');
  end if;
  if p_cost_usd is null or p_cost_usd < 0 or p_latency_ms is null or p_latency_ms < 0 then
    perform private.fail('DC400', 'cost_usd and latency_ms must be zero or more');
  end if;

  v_total := private.insert_usage_rows(p.id, m.session_id, m.id, p_usage_rows);
  if v_total <> p_cost_usd then
    perform private.fail('DC400', 'usage rows do not add up to cost_usd');
  end if;
  begin
    update public.chat_messages set
      status = 'complete', content = p_content, citations = p_citations, openai_response_id = p_response_id,
      model = p_model, input_tokens = (p_usage ->> 'input_tokens')::integer,
      cached_tokens = (p_usage ->> 'cached_tokens')::integer, output_tokens = (p_usage ->> 'output_tokens')::integer,
      reasoning_tokens = (p_usage ->> 'reasoning_tokens')::integer,
      file_search_calls = (p_usage ->> 'file_search_calls')::integer,
      cost_usd = p_cost_usd, reserved_usd = 0, latency_ms = p_latency_ms, completed_at = now()
     where id = m.id returning * into m;
  exception when invalid_text_representation or check_violation or numeric_value_out_of_range then
    perform private.fail('DC400', 'usage holds invalid token counts');
  end;
  update public.chat_sessions set last_message_at = now(), updated_at = now(),
         openai_conversation_id = coalesce(openai_conversation_id, p_conversation_id)
   where id = m.session_id returning * into s;
  return jsonb_build_object('message', private.message_json(m), 'session', private.session_json(s),
                            'budget', private.budget_json(p));
end;
$$;
revoke execute on function public.finish_chat_turn(uuid, text, jsonb, text, text, jsonb, numeric, integer, jsonb, text)
  from public, anon;
grant execute on function public.finish_chat_turn(uuid, text, jsonb, text, text, jsonb, numeric, integer, jsonb, text)
  to authenticated;

-- fail_chat_turn: OpenAI failed; the turn keeps the error, the reservation is released, and any
-- usage OpenAI did bill (p_usage_rows) is recorded.
create or replace function public.fail_chat_turn(p_message_id uuid, p_error_code text, p_error_message text,
                                                 p_usage_rows jsonb default '[]'::jsonb,
                                                 p_conversation_id text default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.active_profile();
  m public.chat_messages;
  v_total numeric;
begin
  select * into m from public.chat_messages
   where id = p_message_id and user_id = p.id and role = 'assistant' for update;
  if not found then
    perform private.fail('DC404', 'message not found');
  end if;
  if m.status <> 'pending' then
    perform private.fail('DC409', 'turn is already finished');
  end if;
  v_total := private.insert_usage_rows(p.id, m.session_id, m.id, coalesce(p_usage_rows, '[]'::jsonb));
  update public.chat_messages set status = 'failed', error_code = left(coalesce(p_error_code, 'error'), 100),
         error_message = left(coalesce(p_error_message, ''), 1000), reserved_usd = 0,
         cost_usd = v_total, completed_at = now()
   where id = m.id returning * into m;
  update public.chat_sessions set updated_at = now(),
         openai_conversation_id = coalesce(openai_conversation_id, p_conversation_id)
   where id = m.session_id;
  return jsonb_build_object('message', private.message_json(m), 'budget', private.budget_json(p));
end;
$$;
revoke execute on function public.fail_chat_turn(uuid, text, text, jsonb, text) from public, anon;
grant execute on function public.fail_chat_turn(uuid, text, text, jsonb, text) to authenticated;
