-- Idempotency-Key support for POSTs that create things: the first request with a key runs, a
-- retry with the same key and the same request gets the stored response, a different request with
-- the same key is refused, and a retry while the first still runs is told to wait.

-- Backend API (service_role only, for the user p_user_id): a stored response is replayed as the
-- backend's own answer, so a user must not be able to write one.

drop function if exists public.idempotency_begin(text, text, text, integer);
drop function if exists public.idempotency_finish(text, text, integer, jsonb);

-- idempotency_begin: returns {state: new | replay | in_progress | mismatch, status, body}. DC410 for
-- a disabled user, DC404 for an unknown one.
create or replace function public.idempotency_begin(p_user_id uuid, p_route text, p_key text, p_fingerprint text,
                                                    p_lock_seconds integer default 300) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.backend_profile(p_user_id)).id;
  k public.idempotency_keys;
begin
  if p_key is null or char_length(p_key) not between 8 and 255 or p_key !~ '^[\x21-\x7e]+$' then
    perform private.fail('DC400', 'Idempotency-Key must be 8 to 255 printable ASCII characters');
  end if;
  if p_route is null or char_length(p_route) not between 1 and 100 or p_fingerprint is null
     or char_length(p_fingerprint) not between 1 and 200 or p_lock_seconds is null
     or p_lock_seconds not between 1 and 3600 then
    perform private.fail('DC400', 'route, fingerprint and lock_seconds are required');
  end if;
  insert into public.idempotency_keys (user_id, route, key, fingerprint, locked_until)
  values (v_uid, p_route, p_key, p_fingerprint, now() + make_interval(secs => p_lock_seconds))
  on conflict do nothing;
  if found then
    return jsonb_build_object('state', 'new');
  end if;
  select * into k from public.idempotency_keys where user_id = v_uid and route = p_route and key = p_key for update;
  if k.fingerprint <> p_fingerprint then
    return jsonb_build_object('state', 'mismatch');
  end if;
  if k.status = 'done' then
    return jsonb_build_object('state', 'replay', 'status', k.response_status, 'body', k.response_body);
  end if;
  if k.locked_until > now() then
    return jsonb_build_object('state', 'in_progress');
  end if;
  -- The first attempt died without finishing: this one takes over.
  update public.idempotency_keys set locked_until = now() + make_interval(secs => p_lock_seconds)
   where user_id = v_uid and route = p_route and key = p_key;
  return jsonb_build_object('state', 'new');
end;
$$;
revoke execute on function public.idempotency_begin(uuid, text, text, text, integer) from public, anon, authenticated;
grant execute on function public.idempotency_begin(uuid, text, text, text, integer) to service_role;

-- idempotency_finish: stores the response for replay (p_status null releases the key instead, so a
-- request that failed on the server side can be retried). A body above 256 KiB is DC413. A user
-- disabled meanwhile still gets the key settled.
create or replace function public.idempotency_finish(p_user_id uuid, p_route text, p_key text, p_status integer,
                                                     p_body jsonb default null) returns void
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.backend_profile(p_user_id, p_allow_disabled => true)).id;
begin
  if p_body is not null and octet_length(p_body::text) > 262144 then
    perform private.fail('DC413', 'the stored response is larger than 256 KiB');
  end if;
  if p_status is null then
    delete from public.idempotency_keys where user_id = v_uid and route = p_route and key = p_key;
    return;
  end if;
  if p_status not between 200 and 499 then
    perform private.fail('DC400', 'only 2xx and 4xx responses are stored');
  end if;
  update public.idempotency_keys set status = 'done', response_status = p_status, response_body = p_body
   where user_id = v_uid and route = p_route and key = p_key;
  if not found then
    perform private.fail('DC404', 'idempotency key not found');
  end if;
end;
$$;
revoke execute on function public.idempotency_finish(uuid, text, text, integer, jsonb) from public, anon, authenticated;
grant execute on function public.idempotency_finish(uuid, text, text, integer, jsonb) to service_role;
