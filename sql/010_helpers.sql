-- Private helpers used by the function API. Not exposed: schema private is not in PostgREST's list,
-- and EXECUTE is granted only where an API function running as the caller needs it.
-- Errors carry stable SQLSTATEs of class DC that Python maps (common/errors.py SQL_ERROR_CODES):
-- DC400 invalid input, DC401 not signed in, DC402 budget exceeded, DC403 forbidden, DC404 not found,
-- DC409 conflict, DC410 account disabled, DC413 too large, DC423 already running, DC429 too many requests,
-- DCE03 email unconfirmed, DCQ13 quota exceeded
-- (detail {"retry_after": seconds}); DC402 carries {spent_usd, reserved_usd, monthly_budget_usd, resets_on}.

create or replace function private.fail(p_code text, p_message text) returns void
language plpgsql immutable set search_path = ''
as $$
begin
  raise exception using errcode = p_code, message = p_message;
end;
$$;

-- The signed-in caller's id, or DC401.
create or replace function private.caller_id() returns uuid
language plpgsql stable set search_path = ''
as $$
declare
  v_uid uuid;
begin
  begin
    v_uid := auth.uid();
  exception when invalid_text_representation then
    perform private.fail('DC401', 'the token subject is not a user id');
  end;
  if v_uid is null then
    perform private.fail('DC401', 'not signed in');
  end if;
  return v_uid;
end;
$$;

-- The monthly budget a new profile starts with. Supabase's anonymous sign-ins (auth.users.is_anonymous)
-- cost as much per turn as anyone but prove nothing about who is behind them, so they start with a
-- budget of their own, lower than everyone else's (the column default of user_profiles, which a
-- test keeps equal to the other branch). An admin may change either afterwards.
create or replace function private.new_profile_budget(p_anonymous boolean) returns public.usd
language sql immutable set search_path = ''
as $$
  select (case when p_anonymous then 0.50 else 10 end)::public.usd
$$;
revoke execute on function private.new_profile_budget(boolean) from public;

-- Whether a user signed in anonymously: auth.users says so, or (for a token whose user row is being
-- read in the same moment it is created) the verified token's is_anonymous claim does.
create or replace function private.is_anonymous_user(p_user_id uuid, p_claims jsonb) returns boolean
language plpgsql stable security definer set search_path = ''
as $$
begin
  return coalesce(p_claims -> 'is_anonymous' = 'true'::jsonb, false)
      or exists (select 1 from auth.users u where u.id = p_user_id and u.is_anonymous);
end;
$$;
revoke execute on function private.is_anonymous_user(uuid, jsonb) from public;

-- Profile on first sight: creates the caller's profile (role from app_metadata, never user_metadata;
-- an anonymous user's budget from private.new_profile_budget), touches last_seen_at at most once a
-- minute, refuses a disabled account. Returns the profile row.
create or replace function private.active_profile() returns public.user_profiles
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := private.caller_id();
  v_claims jsonb := coalesce(auth.jwt(), '{}'::jsonb);
  v_profile public.user_profiles;
begin
  select * into v_profile from public.user_profiles where id = v_uid;
  if not found then
    begin
      insert into public.user_profiles as up (id, email, role, monthly_budget_usd)
      values (v_uid, nullif(v_claims ->> 'email', ''),
              case when v_claims -> 'app_metadata' ->> 'role' = 'admin' then 'admin' else 'user' end,
              private.new_profile_budget(private.is_anonymous_user(v_uid, v_claims)))
      on conflict (id) do update set last_seen_at = now()
      returning * into v_profile;
    exception when foreign_key_violation then
      perform private.fail('DC401', 'unknown user');
    end;
  elsif v_profile.last_seen_at < now() - interval '1 minute' then
    update public.user_profiles set last_seen_at = now(), email = coalesce(nullif(v_claims ->> 'email', ''), email)
     where id = v_uid returning * into v_profile;
  end if;
  if v_profile.disabled then
    perform private.fail('DC410', 'this account is disabled');
  end if;
  return v_profile;
end;
$$;

create or replace function private.require_admin() returns public.user_profiles
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_profile public.user_profiles := private.active_profile();
begin
  if v_profile.role <> 'admin' then
    perform private.fail('DC403', 'admin role required');
  end if;
  return v_profile;
end;
$$;

create or replace function private.check_limit(p_limit integer) returns integer
language plpgsql immutable set search_path = ''
as $$
begin
  if p_limit is null or p_limit < 1 or p_limit > 100 then
    perform private.fail('DC400', 'limit must be between 1 and 100');
  end if;
  return p_limit;
end;
$$;

-- Opaque keyset cursors: hex of "<epoch microseconds>:<id>".
create or replace function private.encode_cursor(p_ts timestamptz, p_id text) returns text
language sql immutable set search_path = ''
as $$
  select encode(convert_to(((extract(epoch from p_ts) * 1000000)::bigint)::text || ':' || p_id, 'UTF8'), 'hex')
$$;

create or replace function private.decode_cursor(p_cursor text, out ts timestamptz, out id text)
language plpgsql immutable set search_path = ''
as $$
declare
  v_text text;
begin
  if p_cursor is null then
    return;
  end if;
  begin
    v_text := convert_from(decode(p_cursor, 'hex'), 'UTF8');
    ts := timestamptz 'epoch' + (split_part(v_text, ':', 1)::bigint || ' microseconds')::interval;
    id := substr(v_text, position(':' in v_text) + 1);
  exception when others then
    perform private.fail('DC400', 'invalid cursor');
  end;
  if id is null or id = '' or position(':' in v_text) = 0 then
    perform private.fail('DC400', 'invalid cursor');
  end if;
end;
$$;

-- One page of a keyset-paginated list: p_rows is the ordered array of {item, ts, id} for up to
-- p_limit + 1 rows; returns {items, next_cursor} (a cursor only when a further row exists).
create or replace function private.page_of(p_rows jsonb, p_limit integer) returns jsonb
language sql immutable set search_path = ''
as $$
  select jsonb_build_object(
    'items', coalesce((select jsonb_agg(r -> 'item' order by n) from jsonb_array_elements(p_rows) with ordinality e(r, n)
                        where n <= p_limit), '[]'::jsonb),
    'next_cursor', case when jsonb_array_length(p_rows) > p_limit
                        then private.encode_cursor((p_rows -> (p_limit - 1) ->> 'ts')::timestamptz,
                                                   p_rows -> (p_limit - 1) ->> 'id') end)
$$;

create or replace function private.cursor_uuid(p_id text) returns uuid
language plpgsql immutable set search_path = ''
as $$
begin
  return p_id::uuid;
exception when invalid_text_representation then
  perform private.fail('DC400', 'invalid cursor');
  return null;
end;
$$;

-- A clean single-line label: trimmed, control characters refused, length bounded.
create or replace function private.clean_text(p_value text, p_field text, p_max integer) returns text
language plpgsql immutable set search_path = ''
as $$
declare
  v text := btrim(p_value);
begin
  if v is null or v = '' then
    perform private.fail('DC400', p_field || ' is required');
  end if;
  if v ~ '[[:cntrl:]]' then
    perform private.fail('DC400', p_field || ' must not contain control characters');
  end if;
  if char_length(v) > p_max then
    perform private.fail('DC400', p_field || ' is longer than ' || p_max || ' characters');
  end if;
  return v;
end;
$$;

-- A document as a user sees it: no OpenAI ids (D8: no answer to a user carries another user's store
-- or file ids; the backend API adds them to its own results). The owner's id is shown to the owner
-- and to admins only; ``shared`` tells a reader that someone else owns it.
create or replace function private.document_json(d public.documents, p_viewer uuid) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select jsonb_build_object(
    'id', d.id, 'name', d.name, 'mime_type', d.mime_type, 'size_bytes', d.size_bytes, 'sha256', d.sha256,
    'status', d.status, 'error', d.error, 'shared', d.user_id <> p_viewer, 'usage_bytes', d.usage_bytes,
    'created_at', d.created_at, 'updated_at', d.updated_at)
    || case when d.user_id = p_viewer
              or exists (select 1 from public.user_profiles up where up.id = p_viewer and up.role = 'admin')
            then jsonb_build_object('owner_id', d.user_id) else '{}'::jsonb end
$$;

-- The document if the caller may read it (own, or an accepted share: document_access holds only
-- accepted shares) and it is not deleted; else DC404.
create or replace function private.readable_document(p_document_id uuid, p_uid uuid) returns public.documents
language plpgsql stable security definer set search_path = ''
as $$
declare
  d public.documents;
begin
  select * into d from public.documents
   where id = p_document_id and status <> 'deleted'
     and (user_id = p_uid or exists (select 1 from public.document_access a
                                      where a.document_id = p_document_id and a.user_id = p_uid));
  if not found then
    perform private.fail('DC404', 'document not found');
  end if;
  return d;
end;
$$;

-- The document if the caller owns it; a reader gets DC403, anyone else DC404. Locks the row.
create or replace function private.owned_document(p_document_id uuid, p_uid uuid) returns public.documents
language plpgsql volatile security definer set search_path = ''
as $$
declare
  d public.documents := private.readable_document(p_document_id, p_uid);
begin
  if d.user_id <> p_uid then
    perform private.fail('DC403', 'only the owner can do this');
  end if;
  select * into d from public.documents where id = p_document_id for update;
  return d;
end;
$$;

create or replace function private.session_json(s public.chat_sessions) returns jsonb
language sql stable set search_path = ''
as $$
  select jsonb_build_object(
    'id', s.id, 'title', s.title, 'message_count', s.message_count, 'last_message_at', s.last_message_at,
    'cost_usd', s.cost_usd, 'document_ids', s.document_ids, 'openai_conversation_id', s.openai_conversation_id,
    'created_at', s.created_at, 'updated_at', s.updated_at)
$$;

create or replace function private.owned_session(p_session_id uuid, p_uid uuid) returns public.chat_sessions
language plpgsql volatile security definer set search_path = ''
as $$
declare
  s public.chat_sessions;
begin
  select * into s from public.chat_sessions where id = p_session_id and user_id = p_uid for update;
  if not found then
    perform private.fail('DC404', 'session not found');
  end if;
  return s;
end;
$$;

-- The first day of the UTC month holding p_at, whatever the session's time zone (PostgREST lets a
-- caller pick it per request with "Prefer: timezone="): budgets, rollups and reports use this.
create or replace function private.utc_month_start(p_at timestamptz) returns date
language sql immutable set search_path = ''
as $$
  select date_trunc('month', p_at at time zone 'UTC')::date
$$;

-- Money committed this UTC month (from the daily rollup) and money reserved by turns still pending.
-- A pending turn keeps its reservation until it is settled (finish, fail, or the stale-turn sweep):
-- reservations never lapse by age.
create or replace function private.budget_json(p public.user_profiles) returns jsonb
language sql stable security definer set search_path = ''
as $$
  with spent as (
    select coalesce(sum(cost_usd), 0) as v from public.usage_daily
     where user_id = p.id and day >= private.utc_month_start(now())
  ), reserved as (
    select coalesce(sum(reserved_usd), 0) as v from public.chat_messages
     where user_id = p.id and status = 'pending'
  )
  select jsonb_build_object(
    'monthly_budget_usd', p.monthly_budget_usd, 'spent_usd', spent.v, 'reserved_usd', reserved.v,
    'remaining_usd', greatest(p.monthly_budget_usd - spent.v - reserved.v, 0),
    'resets_on', (private.utc_month_start(now()) + interval '1 month')::date)
    from spent, reserved
$$;

-- Keeps usage_daily in step with usage_logs, in the same transaction as the insert (days in UTC).
create or replace function private.rollup_usage() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  insert into public.usage_daily as d (user_id, day, service, model, requests, input_tokens, cached_tokens,
    cache_write_tokens, output_tokens, reasoning_tokens, tool_calls, quantity, cost_usd)
  values (new.user_id, (new.created_at at time zone 'UTC')::date, new.service, coalesce(new.model, ''), 1,
    new.input_tokens, new.cached_tokens, new.cache_write_tokens, new.output_tokens, new.reasoning_tokens,
    new.tool_calls, new.quantity, new.cost_usd)
  on conflict (user_id, day, service, model) do update set
    requests = d.requests + 1,
    input_tokens = d.input_tokens + excluded.input_tokens,
    cached_tokens = d.cached_tokens + excluded.cached_tokens,
    cache_write_tokens = d.cache_write_tokens + excluded.cache_write_tokens,
    output_tokens = d.output_tokens + excluded.output_tokens,
    reasoning_tokens = d.reasoning_tokens + excluded.reasoning_tokens,
    tool_calls = d.tool_calls + excluded.tool_calls,
    quantity = d.quantity + excluded.quantity,
    cost_usd = d.cost_usd + excluded.cost_usd;
  return null;
end;
$$;

drop trigger if exists usage_logs_rollup on public.usage_logs;
create trigger usage_logs_rollup after insert on public.usage_logs
  for each row execute function private.rollup_usage();

-- A money argument: present, a finite number, zero or more and below a million dollars; else DC400.
create or replace function private.checked_usd(p_value numeric, p_field text) returns numeric
language plpgsql immutable set search_path = ''
as $$
begin
  if p_value is null or p_value = 'NaN'::numeric or p_value < 0 or p_value >= 1000000 then
    perform private.fail('DC400', p_field || ' must be a number from 0 to 1000000');
  end if;
  return p_value;
end;
$$;

-- Usage rows given as a jsonb array (at most 20), inserted in one statement under the database's
-- own key (message, service, model): a second row with the same key is DC409, never dropped. Every
-- cost is checked money (DC400 for NaN, infinity, negative or out of range). Returns the rows' total.
create or replace function private.insert_usage_rows(p_user_id uuid, p_session_id uuid, p_message_id uuid,
                                                     p_rows jsonb, p_price_version text) returns numeric
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_total numeric := 0;
begin
  if p_rows is null or jsonb_typeof(p_rows) <> 'array' then
    perform private.fail('DC400', 'usage rows must be an array');
  end if;
  if jsonb_array_length(p_rows) > 20 then
    perform private.fail('DC413', 'at most 20 usage rows per call');
  end if;
  if exists (select 1 from jsonb_array_elements(p_rows) r where jsonb_typeof(r) <> 'object') then
    perform private.fail('DC400', 'each usage row must be an object');
  end if;
  begin
    select coalesce(sum(private.checked_usd((r ->> 'cost_usd')::numeric, 'usage row cost_usd')), 0)
      into v_total from jsonb_array_elements(p_rows) r;
    insert into public.usage_logs (user_id, session_id, message_id, service, model, input_tokens, cached_tokens,
      cache_write_tokens, output_tokens, reasoning_tokens, tool_calls, quantity, cost_usd, price_version)
    select p_user_id, p_session_id, p_message_id, r.service, r.model, coalesce(r.input_tokens, 0),
           coalesce(r.cached_tokens, 0), coalesce(r.cache_write_tokens, 0), coalesce(r.output_tokens, 0),
           coalesce(r.reasoning_tokens, 0), coalesce(r.tool_calls, 0), coalesce(r.quantity, 0), r.cost_usd,
           p_price_version
      from jsonb_to_recordset(p_rows) as r(service text, model text, input_tokens bigint, cached_tokens bigint,
           cache_write_tokens bigint, output_tokens bigint, reasoning_tokens bigint, tool_calls integer,
           quantity numeric, cost_usd numeric);
  exception
    when unique_violation then
      perform private.fail('DC409', 'a usage row for this service and model is already recorded');
    when not_null_violation or check_violation or invalid_text_representation or numeric_value_out_of_range
         or invalid_parameter_value then
      perform private.fail('DC400', 'invalid usage row');
  end;
  return v_total;
end;
$$;

-- The acting user of a backend-API call (granted to service_role only): the profile, created on
-- first sight from auth.users (email, and the role from raw_app_meta_data, never user metadata);
-- DC401 for an unknown user (a deleted one), DC410 for a disabled one unless p_allow_disabled (settling a turn that
-- was already running must still record its cost). Locks the profile row when p_lock.
create or replace function private.backend_profile(p_user_id uuid, p_allow_disabled boolean default false,
                                                   p_lock boolean default false) returns public.user_profiles
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_profile public.user_profiles;
begin
  if p_user_id is null then
    perform private.fail('DC400', 'the acting user is required');
  end if;
  if p_lock then
    select * into v_profile from public.user_profiles where id = p_user_id for update;
  else
    select * into v_profile from public.user_profiles where id = p_user_id;
  end if;
  if not found then
    insert into public.user_profiles as up (id, email, role, monthly_budget_usd)
    select u.id, u.email, case when u.raw_app_meta_data ->> 'role' = 'admin' then 'admin' else 'user' end,
           private.new_profile_budget(u.is_anonymous)
      from auth.users u where u.id = p_user_id
    on conflict (id) do update set last_seen_at = now()
    returning * into v_profile;
    if not found then
      -- A verified token of a user Auth no longer holds: not signed in, as on the user API.
      perform private.fail('DC401', 'unknown user');
    end if;
  elsif v_profile.last_seen_at < now() - interval '1 minute' then
    update public.user_profiles set last_seen_at = now() where id = p_user_id returning * into v_profile;
  end if;
  if v_profile.disabled and not p_allow_disabled then
    perform private.fail('DC410', 'this account is disabled');
  end if;
  return v_profile;
end;
$$;

-- Raises p_code with a JSON detail Python reads (e.g. {"retry_after": 12}); PostgREST passes the
-- detail on as "details" and psycopg as diag.message_detail.
create or replace function private.fail_with(p_code text, p_message text, p_detail jsonb) returns void
language plpgsql immutable set search_path = ''
as $$
begin
  raise exception using errcode = p_code, message = p_message, detail = p_detail::text;
end;
$$;

revoke execute on all functions in schema private from public, anon;
-- The API functions below are security definer and call these as their owner: no grants needed.
