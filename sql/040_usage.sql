-- Usage and cost, read from the daily rollup (public.usage_daily), never from raw rows. Days and
-- months are UTC whatever the session's time zone.

create or replace function private.usage_range(p_from date, p_to date, out v_from date, out v_to date)
language plpgsql stable set search_path = ''
as $$
begin
  v_from := coalesce(p_from, private.utc_month_start(now()));
  v_to := coalesce(p_to, (now() at time zone 'UTC')::date);
  if v_from > v_to then
    perform private.fail('DC400', 'from must not be after to');
  end if;
  if v_to - v_from > 366 then
    perform private.fail('DC400', 'the range must not exceed 366 days');
  end if;
end;
$$;

-- Totals, by model, by service and by day for the rows of usage_daily that p_where selects.
create or replace function private.usage_report(p_user_id uuid, p_from date, p_to date) returns jsonb
language sql stable security definer set search_path = ''
as $$
  with rows as (
    select * from public.usage_daily
     where (p_user_id is null or user_id = p_user_id) and day between p_from and p_to
  )
  select jsonb_build_object(
    'from', p_from, 'to', p_to,
    'totals', (select jsonb_build_object('requests', coalesce(sum(requests), 0),
                 'input_tokens', coalesce(sum(input_tokens), 0), 'cached_tokens', coalesce(sum(cached_tokens), 0),
                 'cache_write_tokens', coalesce(sum(cache_write_tokens), 0),
                 'output_tokens', coalesce(sum(output_tokens), 0), 'reasoning_tokens', coalesce(sum(reasoning_tokens), 0),
                 'tool_calls', coalesce(sum(tool_calls), 0), 'cost_usd', coalesce(sum(cost_usd), 0)) from rows),
    'by_model', (select coalesce(jsonb_agg(x order by x ->> 'model'), '[]'::jsonb) from (
                   select jsonb_build_object('model', model, 'requests', sum(requests),
                     'input_tokens', sum(input_tokens), 'cached_tokens', sum(cached_tokens),
                     'output_tokens', sum(output_tokens), 'cost_usd', sum(cost_usd)) as x
                     from rows where service = 'chat' group by model) m),
    'by_service', (select coalesce(jsonb_agg(x order by x ->> 'service'), '[]'::jsonb) from (
                   select jsonb_build_object('service', service, 'requests', sum(requests),
                     'tool_calls', sum(tool_calls), 'quantity', sum(quantity), 'cost_usd', sum(cost_usd)) as x
                     from rows group by service) s),
    'by_day', (select coalesce(jsonb_agg(x order by x ->> 'day'), '[]'::jsonb) from (
                   select jsonb_build_object('day', day, 'requests', sum(requests),
                     'input_tokens', sum(input_tokens), 'output_tokens', sum(output_tokens),
                     'cost_usd', sum(cost_usd)) as x
                     from rows group by day) d))
$$;

-- get_usage_summary: the caller's tokens and costs by model, service and day, and budget left.
create or replace function public.get_usage_summary(p_from date default null, p_to date default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.active_profile();
  r record := private.usage_range(p_from, p_to);
begin
  return private.usage_report(p.id, r.v_from, r.v_to) || jsonb_build_object('budget', private.budget_json(p));
end;
$$;
revoke execute on function public.get_usage_summary(date, date) from public, anon;
grant execute on function public.get_usage_summary(date, date) to authenticated;
