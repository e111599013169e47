-- Chat turns: backend API (granted to service_role only). The backend calls them with the secret
-- key, for the user whose token it verified (p_user_id first); a signed-in user cannot call them, so
-- no user chooses a cost, a reservation, a response id or a status learned from OpenAI.
--   begin_chat_turn      checks + the user's message + a pending assistant message holding the reservation
--   record_chat_response the OpenAI response id, as soon as OpenAI announces it
--   finish_chat_turn     answer, citations, retrieved chunks, usage rows and cost; settles the reservation
--   fail_chat_turn       the error, any cost OpenAI did bill; releases the reservation
--   list_stale_chat_turns pending turns older than the chat timeout, for settlement

-- The pending (or settled) assistant message of a turn of p_uid, locked; DC404 when it is not theirs.
create or replace function private.turn_message(p_message_id uuid, p_uid uuid) returns public.chat_messages
language plpgsql volatile security definer set search_path = ''
as $$
declare
  m public.chat_messages;
begin
  select * into m from public.chat_messages
   where id = p_message_id and user_id = p_uid and role = 'assistant' for update;
  if not found then
    perform private.fail('DC404', 'message not found');
  end if;
  return m;
end;
$$;

-- An OpenAI id argument: null, or 1 to 200 printable ASCII characters; else DC400.
create or replace function private.checked_openai_id(p_value text, p_field text) returns text
language plpgsql immutable set search_path = ''
as $$
begin
  if p_value is not null and (char_length(p_value) not between 1 and 200 or p_value !~ '^[\x21-\x7e]+$') then
    perform private.fail('DC400', p_field || ' must be 1 to 200 printable characters');
  end if;
  return p_value;
end;
$$;

create or replace function private.turn_json(p public.user_profiles, s public.chat_sessions, p_user_msg uuid,
                                             p_asst_msg uuid, p_docs jsonb, p_replayed boolean) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select jsonb_build_object('session', private.session_json(s), 'user_message_id', p_user_msg,
    'assistant_message_id', p_asst_msg, 'conversation_id', s.openai_conversation_id,
    'vector_store_id', p.vector_store_id, 'document_ids', p_docs, 'budget', private.budget_json(p),
    'replayed', p_replayed)
$$;

-- begin_chat_turn: one call before OpenAI is asked. Guarantees, under a lock of the user's profile
-- (so concurrent turns of one user are serialised):
-- - idempotent per (user, p_request_id): a repeat returns the same turn with replayed = true and
--   its assistant message as stored (key "message": pending, complete or failed) and whether this
--   call asked the same (key "same_request": the same message, and the same session when one is
--   named), and reserves and checks nothing more;
-- - the user exists (profile made on first sight) and is not disabled (DC410);
-- - the message is 1 to p_max_message_chars characters (default and ceiling 100000; DC413 beyond);
-- - at most p_max_turns_per_minute turns started in the last 60 s (default 60): else DC429 with
--   detail {"retry_after": seconds};
-- - budget: spent this UTC month + pending reservations + p_max_cost_usd must stay below the monthly
--   budget (exactly at the budget admits nothing): else DC402 with detail {spent_usd, reserved_usd,
--   monthly_budget_usd, resets_on};
-- - the session is the user's (DC404) or a new one; the documents searched are the narrowing list
--   (p_document_ids, else the session's own filter, which a new session keeps).
-- Stores the user's message and a pending assistant message holding the reservation.
create or replace function public.begin_chat_turn(p_user_id uuid, p_request_id text, p_message text,
                                                  p_max_cost_usd numeric, p_session_id uuid default null,
                                                  p_document_ids jsonb default null,
                                                  p_max_turns_per_minute integer default null,
                                                  p_max_message_chars integer default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.backend_profile(p_user_id, p_lock => true);
  s public.chat_sessions;
  v_cost numeric := private.checked_usd(p_max_cost_usd, 'max_cost_usd');
  v_max_chars integer := coalesce(p_max_message_chars, 100000);
  v_per_minute integer := coalesce(p_max_turns_per_minute, 60);
  v_user_msg uuid;
  v_asst public.chat_messages;
  v_oldest timestamptz;
  v_budget jsonb;
begin
  if p_request_id is null or char_length(p_request_id) not between 1 and 200 then
    perform private.fail('DC400', 'request_id must be 1 to 200 characters');
  end if;
  if v_max_chars not between 1 and 100000 or v_per_minute not between 1 and 10000 then
    perform private.fail('DC400', 'max_message_chars must be 1 to 100000 and max_turns_per_minute 1 to 10000');
  end if;
  select * into v_asst from public.chat_messages
   where user_id = p.id and request_id = p_request_id and role = 'assistant';
  if found then
    select id into v_user_msg from public.chat_messages
     where user_id = p.id and request_id = p_request_id and role = 'user';
    select * into s from public.chat_sessions where id = v_asst.session_id;
    return private.turn_json(p, s, v_user_msg, v_asst.id, private.allowed_documents(p.id, s.document_ids), true)
           || jsonb_build_object('message', private.message_json(v_asst), 'same_request',
                (select m.content = p_message and (p_session_id is null or p_session_id = m.session_id)
                   from public.chat_messages m where m.id = v_user_msg));
  end if;
  if p_message is null or btrim(p_message) = '' then
    perform private.fail('DC400', 'message is required');
  end if;
  if char_length(p_message) > v_max_chars then
    perform private.fail('DC413', 'message is longer than ' || v_max_chars || ' characters');
  end if;

  select created_at into v_oldest from public.chat_messages
   where user_id = p.id and role = 'assistant' and created_at > now() - interval '60 seconds'
   order by created_at desc offset v_per_minute - 1 limit 1;
  if found then
    perform private.fail_with('DC429', 'too many chat turns, retry later', jsonb_build_object('retry_after',
      greatest(1, ceil(extract(epoch from v_oldest + interval '60 seconds' - now())))::integer));
  end if;

  v_budget := private.budget_json(p);
  if (v_budget ->> 'spent_usd')::numeric + (v_budget ->> 'reserved_usd')::numeric + v_cost
     >= p.monthly_budget_usd then
    perform private.fail_with('DC402', 'monthly budget exhausted', v_budget - 'remaining_usd');
  end if;

  if p_session_id is null then
    -- The documents are checked once, below: a refusal there rolls this insert back with the rest.
    insert into public.chat_sessions (user_id, title, document_ids)
    values (p.id, left(regexp_replace(btrim(p_message), '[[:cntrl:][:space:]]+', ' ', 'g'), 60), p_document_ids)
    returning * into s;
  else
    s := private.owned_session(p_session_id, p.id);
  end if;

  insert into public.chat_messages (session_id, user_id, role, status, content, request_id)
  values (s.id, p.id, 'user', 'complete', p_message, p_request_id) returning id into v_user_msg;
  insert into public.chat_messages (session_id, user_id, role, status, reserved_usd, request_id, created_at)
  values (s.id, p.id, 'assistant', 'pending', v_cost, p_request_id, clock_timestamp())
  returning * into v_asst;
  update public.chat_sessions set message_count = message_count + 2, last_message_at = now(), updated_at = now()
   where id = s.id returning * into s;
  return private.turn_json(p, s, v_user_msg, v_asst.id,
                           private.allowed_documents(p.id, coalesce(p_document_ids, s.document_ids)), false);
end;
$$;
revoke execute on function public.begin_chat_turn(uuid, text, text, numeric, uuid, jsonb, integer, integer)
  from public, anon, authenticated;
grant execute on function public.begin_chat_turn(uuid, text, text, numeric, uuid, jsonb, integer, integer)
  to service_role;

-- record_chat_response: the OpenAI ids of a pending turn: a new session's conversation as soon as it
-- is made (before the model call, so a turn whose response id is never stored can still be settled
-- through it: p_response_id null), and the response id as soon as OpenAI announces it (so a turn
-- whose finish never arrives can be settled from it). The same id again is a no-op; a different id,
-- or one already recorded on another turn, is DC409. A disabled user's running turn is still
-- recorded. Returns {message_id, response_id}.
create or replace function public.record_chat_response(p_user_id uuid, p_message_id uuid, p_response_id text default null,
                                                       p_conversation_id text default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.backend_profile(p_user_id, p_allow_disabled => true);
  m public.chat_messages := private.turn_message(p_message_id, p.id);
begin
  if private.checked_openai_id(p_response_id, 'response_id') is null
     and private.checked_openai_id(p_conversation_id, 'conversation_id') is null then
    perform private.fail('DC400', 'response_id or conversation_id is required');
  end if;
  perform private.checked_openai_id(p_conversation_id, 'conversation_id');
  if m.status <> 'pending' and p_response_id is null then
    perform private.fail('DC409', 'this turn is no longer running');
  end if;
  if p_response_id is not null and m.openai_response_id is distinct from p_response_id then
    if m.openai_response_id is not null or m.status <> 'pending' then
      perform private.fail('DC409', 'this turn has another response');
    end if;
    begin
      update public.chat_messages set openai_response_id = p_response_id where id = m.id;
    exception when unique_violation then
      perform private.fail('DC409', 'this response belongs to another turn');
    end;
  end if;
  update public.chat_sessions set openai_conversation_id = p_conversation_id
   where id = m.session_id and openai_conversation_id is null and p_conversation_id is not null;
  return jsonb_build_object('message_id', m.id, 'response_id', coalesce(p_response_id, m.openai_response_id));
end;
$$;
revoke execute on function public.record_chat_response(uuid, uuid, text, text) from public, anon, authenticated;
grant execute on function public.record_chat_response(uuid, uuid, text, text) to service_role;

-- Settles a pending turn: the usage rows (DB-keyed, at most 20) must add up to p_cost_usd; the cost is
-- recorded in full even above the reservation (flagged over_reservation); the reservation goes to
-- zero; the session's running cost and conversation id follow, in the same transaction.
create or replace function private.settle_turn(p public.user_profiles, m public.chat_messages, p_cost_usd numeric,
                                               p_usage_rows jsonb, p_price_version text, p_conversation_id text)
returns public.chat_messages
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_cost numeric := private.checked_usd(p_cost_usd, 'cost_usd');
begin
  if p_price_version is not null and char_length(p_price_version) not between 1 and 100 then
    perform private.fail('DC400', 'price_version must be 1 to 100 characters');
  end if;
  perform private.checked_openai_id(p_conversation_id, 'conversation_id');
  if private.insert_usage_rows(p.id, m.session_id, m.id, p_usage_rows, p_price_version) <> v_cost then
    perform private.fail('DC400', 'usage rows do not add up to cost_usd');
  end if;
  update public.chat_messages set cost_usd = v_cost, over_reservation = v_cost > m.reserved_usd, reserved_usd = 0,
         price_version = p_price_version, completed_at = now()
   where id = m.id returning * into m;
  update public.chat_sessions set cost_usd = cost_usd + v_cost, last_message_at = now(), updated_at = now(),
         openai_conversation_id = coalesce(openai_conversation_id, p_conversation_id)
   where id = m.session_id;
  return m;
end;
$$;

-- finish_chat_turn: the answer of a pending turn. Guarantees: the message is the user's assistant
-- message (DC404); a repeat with the same response id returns the stored message and bills nothing
-- more; a turn already settled otherwise, or announced with another response id, is DC409. Stores
-- content, citations, the retrieved chunks (p_retrieval: [{document_id, text, score}], at most 100,
-- never shown in message answers), the raw usage object, the token counts, price version, latency and
-- incomplete reason; records the cost in full (see settle_turn). A user disabled mid-turn is still
-- billed. Returns {message, session, budget, over_reservation, budget_alerts} (the alerts this
-- call recorded, for the caller to log).
create or replace function public.finish_chat_turn(p_user_id uuid, p_message_id uuid, p_response_id text,
                                                   p_model text, p_content text, p_citations jsonb,
                                                   p_retrieval jsonb, p_usage jsonb, p_usage_rows jsonb,
                                                   p_cost_usd numeric, p_price_version text, p_latency_ms integer,
                                                   p_incomplete_reason text default null,
                                                   p_conversation_id text default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.backend_profile(p_user_id, p_allow_disabled => true, p_lock => true);
  m public.chat_messages := private.turn_message(p_message_id, p.id);
  s public.chat_sessions;
begin
  if private.checked_openai_id(p_response_id, 'response_id') is null then
    perform private.fail('DC400', 'response_id is required');
  end if;
  if m.status = 'complete' and m.openai_response_id = p_response_id then
    select * into s from public.chat_sessions where id = m.session_id;
    return jsonb_build_object('message', private.message_json(m), 'session', private.session_json(s),
                              'budget', private.budget_json(p), 'over_reservation', m.over_reservation,
                              'budget_alerts', '[]'::jsonb);
  end if;
  if m.status <> 'pending' or m.openai_response_id <> p_response_id then
    perform private.fail('DC409', 'turn is already settled or has another response');
  end if;
  if p_content is null or char_length(p_content) > 200000 or p_model is null or char_length(p_model) not between 1 and 100 then
    perform private.fail('DC400', 'content (at most 200000 characters) and model are required');
  end if;
  if p_citations is null or jsonb_typeof(p_citations) <> 'array' or jsonb_array_length(p_citations) > 200 then
    perform private.fail('DC400', 'citations must be an array of at most 200');
  end if;
  if p_retrieval is null or jsonb_typeof(p_retrieval) <> 'array' or jsonb_array_length(p_retrieval) > 100
     or octet_length(p_retrieval::text) > 2000000 then
    perform private.fail('DC400', 'retrieval must be an array of at most 100 chunks');
  end if;
  if p_usage is null or jsonb_typeof(p_usage) <> 'object' or octet_length(p_usage::text) > 20000 then
    perform private.fail('DC400', 'usage must be an object');
  end if;
  if p_latency_ms is null or p_latency_ms < 0 then
    perform private.fail('DC400', 'latency_ms must be zero or more');
  end if;
  if p_incomplete_reason is not null and char_length(p_incomplete_reason) not between 1 and 100 then
    perform private.fail('DC400', 'incomplete_reason must be 1 to 100 characters');
  end if;
  begin
    update public.chat_messages set
      status = 'complete', content = p_content, citations = p_citations, retrieval = p_retrieval, usage = p_usage,
      openai_response_id = p_response_id, model = p_model,
      input_tokens = (p_usage ->> 'input_tokens')::integer, cached_tokens = (p_usage ->> 'cached_tokens')::integer,
      cache_write_tokens = (p_usage ->> 'cache_write_tokens')::integer,
      output_tokens = (p_usage ->> 'output_tokens')::integer,
      reasoning_tokens = (p_usage ->> 'reasoning_tokens')::integer,
      file_search_calls = (p_usage ->> 'file_search_calls')::integer,
      latency_ms = p_latency_ms, incomplete_reason = p_incomplete_reason
     where id = m.id returning * into m;
  exception
    when invalid_text_representation or check_violation or numeric_value_out_of_range then
      perform private.fail('DC400', 'usage holds invalid token counts');
    when unique_violation then
      perform private.fail('DC409', 'this response belongs to another turn');
  end;
  m := private.settle_turn(p, m, p_cost_usd, p_usage_rows, p_price_version, p_conversation_id);
  select * into s from public.chat_sessions where id = m.session_id;
  -- The budget alerts this cost reached, recorded in the same transaction (only this call logs them).
  return jsonb_build_object('message', private.message_json(m), 'session', private.session_json(s),
                            'budget', private.budget_json(p), 'over_reservation', m.over_reservation,
                            'budget_alerts', private.record_budget_alerts(p));
end;
$$;
revoke execute on function public.finish_chat_turn(uuid, uuid, text, text, text, jsonb, jsonb, jsonb, jsonb, numeric,
                                                   text, integer, text, text) from public, anon, authenticated;
grant execute on function public.finish_chat_turn(uuid, uuid, text, text, text, jsonb, jsonb, jsonb, jsonb, numeric,
                                                  text, integer, text, text) to service_role;

-- fail_chat_turn: OpenAI failed (or the turn was found stale). Guarantees: the turn keeps the error
-- code and message; the reservation is released; any cost OpenAI did bill (p_usage_rows adding up
-- to p_cost_usd) is recorded; a repeat with the same error code returns the stored message and bills
-- nothing more; any other repeat is DC409. A user disabled mid-turn is still billed.
-- Returns {message, budget}.
create or replace function public.fail_chat_turn(p_user_id uuid, p_message_id uuid, p_error_code text,
                                                 p_error_message text, p_usage_rows jsonb default '[]'::jsonb,
                                                 p_cost_usd numeric default 0, p_price_version text default null,
                                                 p_response_id text default null,
                                                 p_conversation_id text default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.backend_profile(p_user_id, p_allow_disabled => true, p_lock => true);
  m public.chat_messages := private.turn_message(p_message_id, p.id);
begin
  if p_error_code is null or p_error_code !~ '^[a-z0-9_.]{1,100}$' then
    perform private.fail('DC400', 'error_code must be 1 to 100 of a-z, 0-9, "_" and "."');
  end if;
  perform private.checked_openai_id(p_response_id, 'response_id');
  if m.status = 'failed' and m.error_code = p_error_code then
    return jsonb_build_object('message', private.message_json(m), 'budget', private.budget_json(p));
  end if;
  if m.status <> 'pending' or (p_response_id is not null and m.openai_response_id <> p_response_id) then
    perform private.fail('DC409', 'turn is already settled or has another response');
  end if;
  begin
    update public.chat_messages set status = 'failed', error_code = p_error_code,
           error_message = left(coalesce(p_error_message, ''), 1000),
           openai_response_id = coalesce(openai_response_id, p_response_id)
     where id = m.id returning * into m;
  exception when unique_violation then
    perform private.fail('DC409', 'this response belongs to another turn');
  end;
  m := private.settle_turn(p, m, p_cost_usd, coalesce(p_usage_rows, '[]'::jsonb), p_price_version, p_conversation_id);
  return jsonb_build_object('message', private.message_json(m), 'budget', private.budget_json(p));
end;
$$;
revoke execute on function public.fail_chat_turn(uuid, uuid, text, text, jsonb, numeric, text, text, text)
  from public, anon, authenticated;
grant execute on function public.fail_chat_turn(uuid, uuid, text, text, jsonb, numeric, text, text, text)
  to service_role;

-- list_stale_chat_turns: pending turns older than p_older_than_seconds (oldest first, at most
-- p_limit), for the sweep that settles them through finish_chat_turn / fail_chat_turn as backend
-- calls for their user. Reads only; service role only.
create or replace function public.list_stale_chat_turns(p_older_than_seconds integer, p_limit integer) returns jsonb
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_limit integer := private.check_limit(p_limit);
begin
  if p_older_than_seconds is null or p_older_than_seconds not between 1 and 86400 then
    perform private.fail('DC400', 'older_than_seconds must be 1 to 86400');
  end if;
  return (
    select coalesce(jsonb_agg(jsonb_build_object('message_id', m.id, 'user_id', m.user_id, 'session_id', m.session_id,
                                                 'response_id', m.openai_response_id, 'created_at', m.created_at,
                                                 'conversation_id', s.openai_conversation_id,
                                                 'reserved_usd', m.reserved_usd,
                                                 'user_message', (select u.content from public.chat_messages u
                                                                   where u.session_id = m.session_id
                                                                     and u.role = 'user' and u.request_id = m.request_id
                                                                   order by u.created_at desc limit 1))
                              order by m.created_at, m.id), '[]'::jsonb)
      from (select * from public.chat_messages
             where status = 'pending' and created_at < now() - make_interval(secs => p_older_than_seconds)
             order by created_at, id limit v_limit) m
      join public.chat_sessions s on s.id = m.session_id);
end;
$$;
revoke execute on function public.list_stale_chat_turns(integer, integer) from public, anon, authenticated;
grant execute on function public.list_stale_chat_turns(integer, integer) to service_role;
