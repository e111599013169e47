-- Sessions as their owner reads them: listed with their cost and last activity, searched by full
-- text over titles and message text (GIN indexes, highlighted snippets), exported whole. All user
-- API: reads of what the caller owns, safe to call directly with any arguments. A session's cost and
-- last activity are kept on the session row by the chat-turn functions (private.session_json).

-- Superseded: the per-minute turn limit is applied by begin_chat_turn, and get_session answers one
-- session with its cost.
drop function if exists public.get_recent_turns(integer);
drop function if exists public.get_my_session(uuid);
drop function if exists private.session_with_cost(public.chat_sessions);

create index if not exists chat_sessions_title_fts_idx
  on public.chat_sessions using gin (to_tsvector('english'::regconfig, title));
create index if not exists chat_messages_content_fts_idx
  on public.chat_messages using gin (to_tsvector('english'::regconfig, content));
-- begin_chat_turn's per-minute count of a user's turns reads this one.
create index if not exists chat_messages_user_role_created_idx
  on public.chat_messages (user_id, role, created_at);

-- list_my_sessions: the caller's sessions, most recently active first, each with its message count,
-- last activity and cost; keyset-paginated. With p_q, only sessions whose title or any message matches the words of p_q (web search
-- syntax, English stemming), each with a short snippet of the best place it matched (the matched words
-- between ** and **). A query of only stop words matches nothing. Never shows another user's session.
create or replace function public.list_my_sessions(p_limit integer default 20, p_cursor text default null,
                                                   p_q text default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  v_limit integer := private.check_limit(p_limit);
  c record := private.decode_cursor(p_cursor);
  v_cursor_id uuid := private.cursor_uuid(c.id);
  v_query tsquery;
  v_options constant text := 'StartSel=**, StopSel=**, MaxWords=18, MinWords=6, MaxFragments=1';
begin
  if p_q is not null then
    if char_length(p_q) > 200 or btrim(p_q) = '' then
      perform private.fail('DC400', 'q must hold 1 to 200 characters');
    end if;
    v_query := websearch_to_tsquery('english'::regconfig, p_q);
  end if;
  return private.page_of((
    select coalesce(jsonb_agg(jsonb_build_object('item', t.item, 'ts', t.ts, 'id', t.id)
                              order by t.ts desc, t.id desc), '[]'::jsonb)
      from (select private.session_json(s) || case when v_query is null then '{}'::jsonb else
                     jsonb_build_object('snippet', coalesce(
                       (select ts_headline('english'::regconfig, m.content, v_query, v_options)
                          from public.chat_messages m
                         where m.session_id = s.id
                           and to_tsvector('english'::regconfig, m.content) @@ v_query
                         order by m.created_at desc limit 1),
                       ts_headline('english'::regconfig, s.title, v_query, v_options))) end as item,
                   s.updated_at as ts, s.id
              from public.chat_sessions s
             where s.user_id = v_uid
               and (c.ts is null or (s.updated_at, s.id) < (c.ts, v_cursor_id))
               and (v_query is null or s.id in (
                      -- matches found through the GIN indexes, narrowed to the caller's rows
                      select m.session_id from public.chat_messages m
                       where m.user_id = v_uid and to_tsvector('english'::regconfig, m.content) @@ v_query
                      union
                      select t.id from public.chat_sessions t
                       where t.user_id = v_uid and to_tsvector('english'::regconfig, t.title) @@ v_query))
             order by s.updated_at desc, s.id desc limit v_limit + 1) t), v_limit);
end;
$$;
revoke execute on function public.list_my_sessions(integer, text, text) from public, anon;
grant execute on function public.list_my_sessions(integer, text, text) to authenticated;

-- export_session: the whole conversation of one of the caller's sessions, oldest message first, with
-- citations, tokens and costs, for a person to keep. DC404 for a missing or another user's session.
create or replace function public.export_session(p_session_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  s public.chat_sessions := private.owned_session(p_session_id, (private.active_profile()).id);
begin
  return jsonb_build_object(
    'session', private.session_json(s),
    'messages', (select coalesce(jsonb_agg(private.message_json(m) order by m.created_at, m.id), '[]'::jsonb)
                   from public.chat_messages m where m.session_id = s.id),
    'exported_at', now());
end;
$$;
revoke execute on function public.export_session(uuid) from public, anon;
grant execute on function public.export_session(uuid) to authenticated;
