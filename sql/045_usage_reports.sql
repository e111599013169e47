-- Usage reports and budget alerts. Months and days are UTC from the start: "today" is
-- (now() at time zone 'UTC')::date, never a date_trunc of a timestamptz in the session's zone.
-- Figures come from the daily rollup (public.usage_daily), never from raw usage rows; what each
-- document cost comes from the turns that cited it (public.chat_messages.citations) and from its
-- storage rows in usage_logs (through partial indexes: the rollup has no document column).

-- Budget alerts: one row per user, UTC month and threshold. The primary key makes the record
-- exactly-once, so of two instances crossing a threshold together only one logs the alert.
create table if not exists public.budget_alerts (
  user_id uuid not null references public.user_profiles (id) on delete cascade,
  month date not null check (extract(day from month) = 1),
  threshold smallint not null check (threshold between 1 and 100),
  spent_usd public.usd not null,
  budget_usd public.usd not null,
  created_at timestamptz not null default now(),
  primary key (user_id, month, threshold)
);
alter table public.budget_alerts enable row level security;
revoke all on public.budget_alerts from anon, authenticated;
grant all on public.budget_alerts to service_role;

-- Completed turns by time, for the per-document reports (citations of the turns in a range).
create index if not exists chat_messages_user_completed_idx on public.chat_messages (user_id, created_at)
  where role = 'assistant' and status = 'complete';
create index if not exists chat_messages_completed_idx on public.chat_messages (created_at)
  where role = 'assistant' and status = 'complete';

-- private.utc_today / private.utc_month_start: the UTC calendar, whatever the session's time zone.
create or replace function private.utc_today() returns date
language sql stable set search_path = ''
as $$ select (now() at time zone 'UTC')::date $$;

create or replace function private.utc_month_start(p_day date) returns date
language sql immutable set search_path = ''
as $$ select p_day - (extract(day from p_day)::integer - 1) $$;

-- private.utc_range: the report range; defaults to this UTC month up to today. Guarantees
-- from <= to and at most 366 days (DC400 otherwise).
create or replace function private.utc_range(p_from date, p_to date, out v_from date, out v_to date)
language plpgsql stable set search_path = ''
as $$
begin
  v_from := coalesce(p_from, private.utc_month_start(coalesce(p_to, private.utc_today())));
  v_to := coalesce(p_to, greatest(private.utc_today(), v_from));
  if v_from > v_to then
    perform private.fail('DC400', 'from must not be after to');
  end if;
  if v_to - v_from > 366 then
    perform private.fail('DC400', 'the range must not exceed 366 days');
  end if;
end;
$$;

-- private.usage_figures: the sums every report row carries, as one jsonb object.
create or replace function private.usage_figures(p_requests numeric, p_input numeric, p_cached numeric,
                                                 p_cache_write numeric, p_output numeric, p_reasoning numeric,
                                                 p_tool_calls numeric, p_quantity numeric, p_cost numeric)
returns jsonb
language sql immutable set search_path = ''
as $$
  select jsonb_build_object('requests', coalesce(p_requests, 0), 'input_tokens', coalesce(p_input, 0),
    'cached_tokens', coalesce(p_cached, 0), 'cache_write_tokens', coalesce(p_cache_write, 0),
    'output_tokens', coalesce(p_output, 0), 'reasoning_tokens', coalesce(p_reasoning, 0),
    'tool_calls', coalesce(p_tool_calls, 0), 'quantity', coalesce(p_quantity, 0), 'cost_usd', coalesce(p_cost, 0))
$$;

-- private.user_budget: the user's budget this UTC month as private.budget_json counts it (limit,
-- spent from the rollup, reserved by turns still pending, remaining, the reset date), plus the month,
-- the thresholds crossed and the month-end spend projected at this month's pace so far.
create or replace function private.user_budget(p public.user_profiles) returns jsonb
language sql stable security definer set search_path = ''
as $$
  with cal as (
    select private.utc_today() as today, private.utc_month_start(private.utc_today()) as month_start
  ), cal2 as (
    select today, month_start, (month_start + interval '1 month')::date as next_month from cal
  ), budget as (
    select private.budget_json(p) as b
  ), spent as (
    select (b ->> 'spent_usd')::numeric as v from budget
  )
  select budget.b || jsonb_build_object(
    'month', cal2.month_start,
    'thresholds_crossed', (select coalesce(jsonb_agg(t order by t), '[]'::jsonb) from unnest(array[80, 95, 100]) t
                            where spent.v > 0 and spent.v >= p.monthly_budget_usd * t / 100),
    'projected_month_end_usd', round(spent.v / (cal2.today - cal2.month_start + 1)
                                     * (cal2.next_month - cal2.month_start), 8))
    from budget, spent, cal2
$$;

-- private.record_budget_alerts: records the 80 % and 95 % alerts the user's month has reached and
-- returns only those this call recorded ([] when another call already did), so exactly one caller
-- logs each alert once per threshold per user per UTC month.
create or replace function private.record_budget_alerts(p public.user_profiles) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_budget jsonb := private.user_budget(p);
  v_spent numeric := (v_budget ->> 'spent_usd')::numeric;
  v_new jsonb;
begin
  with inserted as (
    insert into public.budget_alerts (user_id, month, threshold, spent_usd, budget_usd)
    select p.id, (v_budget ->> 'month')::date, t, v_spent, p.monthly_budget_usd
      from unnest(array[80, 95]) t
     where v_spent > 0 and v_spent >= p.monthly_budget_usd * t / 100
    on conflict (user_id, month, threshold) do nothing
    returning threshold, month, spent_usd, budget_usd
  )
  select coalesce(jsonb_agg(jsonb_build_object('threshold', threshold, 'month', month, 'spent_usd', spent_usd,
                                               'monthly_budget_usd', budget_usd) order by threshold), '[]'::jsonb)
    into v_new from inserted;
  return v_new;
end;
$$;

-- Storage rows per document and UTC day (written by registry_record_storage, charged to the owner):
-- the per-document reports read them through these partial indexes, one user's or everyone's, so
-- they stay fast however many turn rows usage_logs holds (usage_daily has no document column).
create index if not exists usage_logs_user_storage_idx on public.usage_logs (user_id, created_at)
  include (document_id, quantity, cost_usd) where service = 'vector_storage' and document_id is not null;
create index if not exists usage_logs_storage_created_idx on public.usage_logs (created_at)
  include (document_id, quantity, cost_usd) where service = 'vector_storage' and document_id is not null;

drop function if exists private.document_turns(uuid, date, date);

-- private.document_costs: per document, in [p_from, p_to] (UTC days), the completed turns that cited
-- it and what they cost (a turn citing two documents counts for each), and its vector storage
-- (GB-days and cost, from the storage rows charged to its owner). One user's turns and storage when
-- p_user_id is given, everyone's otherwise. PL/pgSQL so that each call is planned with its own
-- p_user_id (a custom plan uses the per-user indexes).
create or replace function private.document_costs(p_user_id uuid, p_from date, p_to date)
returns table (document_id uuid, turns bigint, turn_cost_usd numeric, storage_gb_days numeric,
               storage_cost_usd numeric)
language plpgsql stable security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  v_start timestamptz := p_from::timestamp at time zone 'UTC';
  v_end timestamptz := (p_to + 1)::timestamp at time zone 'UTC';
begin
  return query
  with cited as (
    select c.document_id, count(*) as turns, sum(c.cost_usd) as cost
      from (select distinct m.id, m.cost_usd,
                   case when e ->> 'document_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                        then (e ->> 'document_id')::uuid end as document_id
              from public.chat_messages m, jsonb_array_elements(m.citations) e
             where m.role = 'assistant' and m.status = 'complete'
               and (p_user_id is null or m.user_id = p_user_id)
               and m.created_at >= v_start and m.created_at < v_end) c
     where c.document_id is not null
     group by c.document_id
  ), stored as (
    select l.document_id, sum(l.quantity) as gb_days, sum(l.cost_usd) as cost
      from public.usage_logs l
     where l.service = 'vector_storage' and l.document_id is not null
       and (p_user_id is null or l.user_id = p_user_id)
       and l.created_at >= v_start and l.created_at < v_end
     group by l.document_id
  )
  select coalesce(t.document_id, s.document_id), coalesce(t.turns, 0)::bigint, coalesce(t.cost, 0)::numeric,
         coalesce(s.gb_days, 0)::numeric, coalesce(s.cost, 0)::numeric
    from cited t full join stored s on s.document_id = t.document_id;
end;
$$;

-- private.document_cost_json: the figures every per-document report row carries; cost_usd is the
-- turns' cost plus the storage cost.
create or replace function private.document_cost_json(p_turns bigint, p_turn_cost numeric, p_gb_days numeric,
                                                      p_storage_cost numeric) returns jsonb
language sql immutable set search_path = ''
as $$
  select jsonb_build_object('turns', p_turns, 'turn_cost_usd', p_turn_cost, 'storage_gb_days', p_gb_days,
                            'storage_cost_usd', p_storage_cost, 'cost_usd', p_turn_cost + p_storage_cost)
$$;

-- get_usage_report: the caller's usage in [p_from, p_to] (UTC days; default this UTC month):
-- totals, by model, by service, by document, by day (every day of the range, zeros included) and
-- the budget. By document: each of the caller's documents with the turns that cited it and its
-- vector storage. Records the budget alerts the month has reached and returns those this call
-- recorded as new_alerts (the caller logs them).
create or replace function public.get_usage_report(p_from date default null, p_to date default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.active_profile();
  r record := private.utc_range(p_from, p_to);
begin
  return (
    with rows as (
      select * from public.usage_daily ud where ud.user_id = p.id and ud.day between r.v_from and r.v_to
    )
    select jsonb_build_object(
      'from', r.v_from, 'to', r.v_to,
      'totals', (select private.usage_figures(sum(requests), sum(input_tokens), sum(cached_tokens),
                   sum(cache_write_tokens), sum(output_tokens), sum(reasoning_tokens), sum(tool_calls),
                   sum(quantity), sum(cost_usd))
                   || jsonb_build_object(
                     'turns', coalesce(sum(requests) filter (where service = 'chat'), 0),
                     'file_search_calls', coalesce(sum(tool_calls) filter (where service = 'file_search'), 0),
                     'storage_gb_days', coalesce(sum(quantity) filter (where service = 'vector_storage'), 0),
                     'storage_cost_usd', coalesce(sum(cost_usd) filter (where service = 'vector_storage'), 0))
                   from rows),
      'by_model', (select coalesce(jsonb_agg(x order by x ->> 'model'), '[]'::jsonb) from (
                     select jsonb_build_object('model', model) || private.usage_figures(sum(requests), sum(input_tokens),
                              sum(cached_tokens), sum(cache_write_tokens), sum(output_tokens), sum(reasoning_tokens),
                              sum(tool_calls), sum(quantity), sum(cost_usd)) as x
                       from rows where model <> '' group by model) m),
      'by_service', (select coalesce(jsonb_agg(x order by x ->> 'service'), '[]'::jsonb) from (
                     select jsonb_build_object('service', service) || private.usage_figures(sum(requests),
                              sum(input_tokens), sum(cached_tokens), sum(cache_write_tokens), sum(output_tokens),
                              sum(reasoning_tokens), sum(tool_calls), sum(quantity), sum(cost_usd)) as x
                       from rows group by service) s),
      'by_document', (select coalesce(jsonb_agg(jsonb_build_object('document_id', d.id, 'name', d.name,
                                'status', d.status) || private.document_cost_json(c.turns, c.turn_cost_usd,
                                c.storage_gb_days, c.storage_cost_usd)
                                order by c.turn_cost_usd + c.storage_cost_usd desc, d.id), '[]'::jsonb)
                        from private.document_costs(p.id, r.v_from, r.v_to) c
                        join public.documents d on d.id = c.document_id
                       where d.user_id = p.id),
      'by_day', (select jsonb_agg(d.figures order by d.day) from (
                   select g.day, jsonb_build_object('day', g.day::date) || private.usage_figures(sum(x.requests),
                          sum(x.input_tokens), sum(x.cached_tokens), sum(x.cache_write_tokens), sum(x.output_tokens),
                          sum(x.reasoning_tokens), sum(x.tool_calls), sum(x.quantity), sum(x.cost_usd)) as figures
                     from (select generate_series(r.v_from::timestamp, r.v_to::timestamp, interval '1 day') as day) g
                     left join rows x on x.day = g.day::date
                    group by g.day) d),
      'budget', private.user_budget(p),
      'new_alerts', private.record_budget_alerts(p))
      from (select 1) one);
end;
$$;
revoke execute on function public.get_usage_report(date, date) from public, anon;
grant execute on function public.get_usage_report(date, date) to authenticated;

-- record_budget_alerts (backend API): after a turn is billed, records the alerts the acting user's
-- month has reached; returns only those this call recorded, for the caller to log.
create or replace function public.record_budget_alerts(p_user_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles;
begin
  select * into p from public.user_profiles where id = p_user_id;
  if not found then
    perform private.fail('DC404', 'user not found');
  end if;
  return private.record_budget_alerts(p);
end;
$$;
revoke execute on function public.record_budget_alerts(uuid) from public, anon, authenticated;
grant execute on function public.record_budget_alerts(uuid) to service_role;
