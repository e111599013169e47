-- The scheduled registry refresh: the documents table converges to what OpenAI holds.
-- Service role only. One call per page of OpenAI files; each call decides every file of its page
-- and returns the actions Python must take at OpenAI (delete, detach, attach).
--
-- A cycle = every store's files, then the project's files; it may span several time-bounded runs
-- (the cursor in registry_state says where the next run continues). Documents not seen in their
-- owner's store during a whole cycle are marked missing when the cycle completes.

alter table public.documents add column if not exists registry_seen_at timestamptz;

-- Storage is a cost per document and day (D7): the row names its document, and the database makes
-- its key, (vector_storage, document, UTC day), so no caller can pre-empt or collide with it.
alter table public.usage_logs add column if not exists document_id uuid;
create unique index if not exists usage_logs_storage_document_day_idx
  on public.usage_logs (document_id, ((created_at at time zone 'UTC')::date))
  where service = 'vector_storage' and document_id is not null;
create unique index if not exists usage_logs_storage_user_day_idx
  on public.usage_logs (user_id, ((created_at at time zone 'UTC')::date))
  where service = 'vector_storage' and document_id is null;

create table if not exists public.registry_state (
  id boolean primary key default true check (id),
  cursor jsonb,
  cycle_started_at timestamptz not null default now(),
  storage_day date
);
alter table public.registry_state enable row level security;
revoke all on public.registry_state from anon, authenticated;
grant all on public.registry_state to service_role;

create or replace function private.registry_status(p_openai_status text) returns text
language sql immutable set search_path = ''
as $$
  select case p_openai_status when 'completed' then 'ready' when 'in_progress' then 'processing' else 'failed' end
$$;

create or replace function private.safe_uuid(p_value text) returns uuid
language plpgsql immutable set search_path = ''
as $$
begin
  return p_value::uuid;
exception when invalid_text_representation then
  return null;  -- not one of our ids: the caller treats the file as unknown
end;
$$;

-- The run must still hold the lease; each page extends it.
create or replace function private.registry_touch(p_run_id bigint, p_lease_seconds integer) returns void
language plpgsql volatile security definer set search_path = ''
as $$
begin
  update public.registry_runs set lease_until = now() + make_interval(secs => p_lease_seconds)
   where id = p_run_id and status = 'running';
  if not found then
    perform private.fail('DC409', 'registry run is not running');
  end if;
end;
$$;

-- registry_begin_run: takes the one running slot (DC423 when another run holds a live lease; a run
-- whose lease expired is marked failed first). Returns the run id and where to continue.
create or replace function public.registry_begin_run(p_lease_seconds integer default 300) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_run bigint;
  st public.registry_state;
begin
  if p_lease_seconds is null or p_lease_seconds not between 10 and 3600 then
    perform private.fail('DC400', 'lease_seconds must be between 10 and 3600');
  end if;
  update public.registry_runs set status = 'failed', finished_at = now(), error = 'lease expired'
   where status = 'running' and lease_until < now();
  begin
    insert into public.registry_runs (lease_until) values (now() + make_interval(secs => p_lease_seconds))
    returning id into v_run;
  exception when unique_violation then
    perform private.fail('DC423', 'a registry run is already running');
  end;
  insert into public.registry_state (id) values (true) on conflict do nothing;
  select * into st from public.registry_state;
  if st.cursor is null then
    update public.registry_state set cycle_started_at = now() where id returning * into st;
  end if;
  return jsonb_build_object('run_id', v_run, 'cursor', st.cursor, 'cycle_started_at', st.cycle_started_at,
                            'storage_day', st.storage_day);
end;
$$;
revoke execute on function public.registry_begin_run(integer) from public, anon, authenticated;
grant execute on function public.registry_begin_run(integer) to service_role;

-- registry_apply_store_page: one page of one vector store's files ({file_id, status, usage_bytes,
-- error, document_id, created_at}). In the owner's store: status and size are synced, a document
-- whose upload died (uploading past the grace period, or failed although OpenAI holds a good file)
-- adopts the file; a file of a deleted document is removed. In a reader's store: a file the reader
-- may no longer read is detached. A file no document knows is reported, and removed after the
-- grace period.
create or replace function public.registry_apply_store_page(p_run_id bigint, p_vector_store_id text,
                                                            p_store_user_id uuid, p_files jsonb,
                                                            p_grace_seconds integer default 3600,
                                                            p_lease_seconds integer default 300) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  f record;
  d public.documents;
  v_grace timestamptz := now() - make_interval(secs => coalesce(p_grace_seconds, 3600));
  v_status text;
  v_updated integer := 0;
  v_adopted integer := 0;
  v_unknown integer := 0;
  v_delete jsonb := '[]'::jsonb;
  v_detach jsonb := '[]'::jsonb;
begin
  perform private.registry_touch(p_run_id, p_lease_seconds);
  if p_files is null or jsonb_typeof(p_files) <> 'array' then
    perform private.fail('DC400', 'files must be an array');
  end if;
  for f in select * from jsonb_to_recordset(p_files) as x(file_id text, status text, usage_bytes bigint,
                                                           error text, document_id text, created_at bigint) loop
    -- The row is locked while this file is decided, and every update names the statuses it moves
    -- from, so a delete (or an upload finish) racing this page is never undone.
    select * into d from public.documents where id = private.safe_uuid(f.document_id) for update;
    if not found then
      select * into d from public.documents where openai_file_id = f.file_id for update;
    end if;
    if d.id is null then
      v_unknown := v_unknown + 1;
      if to_timestamp(f.created_at) < v_grace then
        v_delete := v_delete || jsonb_build_object('file_id', f.file_id, 'vector_store_id', p_vector_store_id,
                                                   'reason', 'unknown');
      end if;
      continue;
    end if;
    if d.user_id is distinct from p_store_user_id then
      if d.status not in ('deleted', 'deleting') then
        update public.document_access set registry_seen_at = now()
         where document_id = d.id and user_id = p_store_user_id;
      end if;
      if d.status in ('deleted', 'deleting') or not found then
        v_detach := v_detach || jsonb_build_object('file_id', f.file_id, 'vector_store_id', p_vector_store_id,
                                                   'reason', 'not_shared');
      end if;
      continue;
    end if;
    v_status := private.registry_status(f.status);
    if d.status in ('deleted', 'deleting') then
      v_delete := v_delete || jsonb_build_object('file_id', f.file_id, 'vector_store_id', p_vector_store_id,
                                                 'reason', 'document_deleted');
    elsif d.openai_file_id is not null and d.openai_file_id <> f.file_id and d.status <> 'uploading' then
      -- A second file for one document (a retried upload): the recorded one stays.
      if to_timestamp(f.created_at) < v_grace then
        v_delete := v_delete || jsonb_build_object('file_id', f.file_id, 'vector_store_id', p_vector_store_id,
                                                   'reason', 'duplicate');
      end if;
    elsif (d.status = 'uploading' and d.updated_at < v_grace)
       or (d.status = 'failed' and v_status <> 'failed' and d.updated_at < v_grace) then
      update public.documents set openai_file_id = f.file_id, vector_store_id = p_vector_store_id,
             status = v_status, error = case when v_status = 'failed' then f.error end,
             usage_bytes = f.usage_bytes, registry_seen_at = now(), updated_at = now()
       where id = d.id and status in ('uploading', 'failed');
      v_adopted := v_adopted + 1;
    elsif d.status in ('processing', 'ready', 'failed', 'missing') then
      if d.status <> v_status or d.usage_bytes is distinct from f.usage_bytes
         or d.openai_file_id is null or d.vector_store_id is distinct from p_vector_store_id then
        v_updated := v_updated + 1;
      end if;
      update public.documents set status = v_status, usage_bytes = f.usage_bytes, openai_file_id = f.file_id,
             vector_store_id = p_vector_store_id, registry_seen_at = now(),
             error = case when v_status = 'failed' then coalesce(f.error, d.error) end,
             updated_at = case when d.status <> v_status then now() else d.updated_at end
       where id = d.id and status in ('processing', 'ready', 'failed', 'missing');
    end if;
  end loop;
  return jsonb_build_object('updated', v_updated, 'adopted', v_adopted, 'unknown', v_unknown,
                            'delete', v_delete, 'detach', v_detach);
end;
$$;
revoke execute on function public.registry_apply_store_page(bigint, text, uuid, jsonb, integer, integer)
  from public, anon, authenticated;
grant execute on function public.registry_apply_store_page(bigint, text, uuid, jsonb, integer, integer)
  to service_role;

-- registry_apply_file_page: one page of the project's files ({file_id, document_id (from the
-- name), created_at}). A live document's file goes to each accepted share's grantee store that has
-- not shown it this cycle. Files whose document was seen in its store this cycle are fine. Otherwise:
-- a file of a deleted or failed document, or of no document, is removed after the grace period; a
-- document whose upload died before its store attach adopts the file and gets an attach action; a
-- processed document whose file left its store gets it re-attached.
create or replace function public.registry_apply_file_page(p_run_id bigint, p_files jsonb,
                                                           p_grace_seconds integer default 3600,
                                                           p_lease_seconds integer default 300) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  f record;
  d public.documents;
  st public.registry_state;
  v_grace timestamptz := now() - make_interval(secs => coalesce(p_grace_seconds, 3600));
  v_old boolean;
  v_adopted integer := 0;
  v_unknown integer := 0;
  v_delete jsonb := '[]'::jsonb;
  v_attach jsonb := '[]'::jsonb;
begin
  perform private.registry_touch(p_run_id, p_lease_seconds);
  if p_files is null or jsonb_typeof(p_files) <> 'array' then
    perform private.fail('DC400', 'files must be an array');
  end if;
  select * into st from public.registry_state;
  for f in select * from jsonb_to_recordset(p_files) as x(file_id text, document_id text, created_at bigint) loop
    v_old := to_timestamp(f.created_at) < v_grace;
    select * into d from public.documents where id = private.safe_uuid(f.document_id) for update;
    if not found then
      select * into d from public.documents where openai_file_id = f.file_id for update;
    end if;
    if d.id is null then
      if f.document_id is not null then
        v_unknown := v_unknown + 1;
        if v_old then
          v_delete := v_delete || jsonb_build_object('file_id', f.file_id, 'reason', 'no_document');
        end if;
      end if;
      continue;
    end if;
    if d.openai_file_id = f.file_id and d.status in ('processing', 'ready') then
      -- Accepted shares whose grantee's store has not shown the file this cycle (an accept that
      -- stopped before its attach, or a file that left the store): attach it there, making the
      -- grantee's store if the accept never recorded one.
      v_attach := v_attach || coalesce((
        select jsonb_agg(jsonb_build_object('file_id', f.file_id, 'document_id', d.id, 'owner_id', d.user_id,
                                            'grantee_id', a.user_id, 'vector_store_id', up.vector_store_id))
          from public.document_access a join public.user_profiles up on up.id = a.user_id
         where a.document_id = d.id and a.created_at < v_grace
           and (a.registry_seen_at is null or a.registry_seen_at < st.cycle_started_at)), '[]'::jsonb);
    end if;
    if d.openai_file_id = f.file_id and d.registry_seen_at >= st.cycle_started_at then
      continue;  -- in its store, checked this cycle
    end if;
    if d.status in ('deleted', 'deleting') then
      v_delete := v_delete || jsonb_build_object('file_id', f.file_id, 'reason', 'document_deleted');
    elsif d.status = 'uploading' and d.updated_at < v_grace and d.openai_file_id is null then
      update public.documents set openai_file_id = f.file_id, updated_at = now()
       where id = d.id and status = 'uploading' and openai_file_id is null;
      v_attach := v_attach || jsonb_build_object('file_id', f.file_id, 'document_id', d.id, 'owner_id', d.user_id,
        'vector_store_id', (select vector_store_id from public.user_profiles where id = d.user_id));
      v_adopted := v_adopted + 1;
    elsif d.openai_file_id is distinct from f.file_id or d.status = 'failed' then
      if v_old then
        v_delete := v_delete || jsonb_build_object('file_id', f.file_id,
          'reason', case when d.status = 'failed' then 'upload_failed' else 'duplicate' end);
        -- The failed row stops pointing at a file that is being removed (its name still leads back here).
        update public.documents set openai_file_id = null
         where id = d.id and status = 'failed' and openai_file_id = f.file_id;
      end if;
    elsif d.status in ('processing', 'ready', 'missing') and d.created_at < st.cycle_started_at then
      v_attach := v_attach || jsonb_build_object('file_id', f.file_id, 'document_id', d.id, 'owner_id', d.user_id,
        'vector_store_id', (select vector_store_id from public.user_profiles where id = d.user_id));
    end if;
  end loop;
  return jsonb_build_object('adopted', v_adopted, 'unknown', v_unknown, 'delete', v_delete, 'attach', v_attach);
end;
$$;
revoke execute on function public.registry_apply_file_page(bigint, jsonb, integer, integer) from public, anon, authenticated;
grant execute on function public.registry_apply_file_page(bigint, jsonb, integer, integer) to service_role;

-- registry_pending_deletes: documents left 'deleting' (a delete that failed part-way) older than
-- p_older_seconds, with what must be removed at OpenAI.
create or replace function public.registry_pending_deletes(p_older_seconds integer default 120,
                                                           p_limit integer default 100) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
begin
  perform private.check_limit(p_limit);
  return (select coalesce(jsonb_agg(private.delete_targets(d)), '[]'::jsonb)
            from (select * from public.documents
                   where status = 'deleting' and updated_at < now() - make_interval(secs => p_older_seconds)
                   order by updated_at limit p_limit) d);
end;
$$;
revoke execute on function public.registry_pending_deletes(integer, integer) from public, anon, authenticated;
grant execute on function public.registry_pending_deletes(integer, integer) to service_role;

-- registry_mark_deleted: OpenAI no longer holds these documents' files.
create or replace function public.registry_mark_deleted(p_document_ids jsonb) returns integer
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_count integer;
begin
  if p_document_ids is null or jsonb_typeof(p_document_ids) <> 'array' then
    perform private.fail('DC400', 'document_ids must be an array');
  end if;
  delete from public.document_shares where document_id in
    (select d.id from public.documents d where d.status = 'deleting'
        and d.id in (select private.safe_uuid(value) from jsonb_array_elements_text(p_document_ids)));
  delete from public.document_access where document_id in
    (select d.id from public.documents d where d.status = 'deleting'
        and d.id in (select private.safe_uuid(value) from jsonb_array_elements_text(p_document_ids)));
  update public.documents set status = 'deleted', deleted_at = now(), updated_at = now()
   where status = 'deleting' and id in (select private.safe_uuid(value) from jsonb_array_elements_text(p_document_ids));
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;
revoke execute on function public.registry_mark_deleted(jsonb) from public, anon, authenticated;
grant execute on function public.registry_mark_deleted(jsonb) to service_role;

-- registry_record_storage: a day's vector-storage cost, given per store ({vector_store_id,
-- usage_bytes, gb_days, cost_usd}), recorded per document and attributed to the document's owner
-- (D7): each store's cost is split over the documents it holds (its user's own and their accepted
-- shares) by their bytes, so a shared copy is paid by its owner. A store holding no document is
-- charged to its user without a document. One row per document and UTC day, keyed by the database;
-- recording a day twice is DC409, never a silent drop. Returns the number of rows.
create or replace function public.registry_record_storage(p_day date, p_rows jsonb) returns integer
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_count integer;
begin
  if p_day is null or p_rows is null or jsonb_typeof(p_rows) <> 'array' or jsonb_array_length(p_rows) > 100000 then
    perform private.fail('DC400', 'day and rows are required');
  end if;
  begin
    if exists (select 1 from jsonb_to_recordset(p_rows) as r(vector_store_id text, gb_days numeric, cost_usd numeric)
                where r.vector_store_id is null or not (r.cost_usd >= 0 and r.cost_usd < 1000000)
                   or not (r.gb_days >= 0 and r.gb_days < 1000000000)) then
      perform private.fail('DC400', 'each row needs a vector_store_id and finite, non-negative cost and gb_days');
    end if;
    with stores as (
      select r.vector_store_id, r.gb_days, r.cost_usd, up.id as store_user
        from jsonb_to_recordset(p_rows) as r(vector_store_id text, gb_days numeric, cost_usd numeric)
        join public.user_profiles up on up.vector_store_id = r.vector_store_id
    ), held as (
      select s.vector_store_id, d.id as document_id, d.user_id as owner_id,
             greatest(coalesce(d.usage_bytes, d.size_bytes), 1) as bytes
        from stores s join public.documents d on d.user_id = s.store_user and d.vector_store_id = s.vector_store_id
       where d.status not in ('uploading', 'deleted')
      union all
      select s.vector_store_id, d.id, d.user_id, greatest(coalesce(d.usage_bytes, d.size_bytes), 1)
        from stores s join public.document_access a on a.user_id = s.store_user
        join public.documents d on d.id = a.document_id
       where d.status not in ('uploading', 'deleted')
    ), shares as (
      select h.*, sum(h.bytes) over (partition by h.vector_store_id) as store_bytes from held h
    ), charged as (
      select sh.document_id, sh.owner_id, sum(s.gb_days * sh.bytes / sh.store_bytes) as gb_days,
             sum(s.cost_usd * sh.bytes / sh.store_bytes) as cost_usd
        from shares sh join stores s on s.vector_store_id = sh.vector_store_id
       group by sh.document_id, sh.owner_id
      union all
      select null, s.store_user, s.gb_days, s.cost_usd from stores s
       where not exists (select 1 from held h where h.vector_store_id = s.vector_store_id)
    )
    insert into public.usage_logs (user_id, document_id, service, model, quantity, cost_usd, request_id, created_at)
    select c.owner_id, c.document_id, 'vector_storage', null, round(c.gb_days, 8), round(c.cost_usd, 8),
           'vector_storage:' || coalesce(c.document_id::text, 'user:' || c.owner_id::text) || ':' || p_day,
           p_day::timestamp at time zone 'UTC'
      from charged c;
    get diagnostics v_count = row_count;
  exception when unique_violation then
    perform private.fail('DC409', 'storage for that day is already recorded');
  end;
  update public.registry_state set storage_day = p_day where id;
  return v_count;
end;
$$;
revoke execute on function public.registry_record_storage(date, jsonb) from public, anon, authenticated;
grant execute on function public.registry_record_storage(date, jsonb) to service_role;

-- registry_finish_run: records the run's figures. When the cycle is complete, documents not seen in
-- their owner's store since it started are marked missing, uploads that stopped before OpenAI held
-- their file (no file seen in the whole cycle names them, and they are older than the grace period)
-- fail and say why, and the next cycle begins; otherwise the cursor says where the next run continues.
drop function if exists public.registry_finish_run(bigint, text, jsonb, jsonb, boolean, text, jsonb);
create or replace function public.registry_finish_run(p_run_id bigint, p_status text, p_figures jsonb,
                                                      p_cursor jsonb default null,
                                                      p_cycle_complete boolean default false,
                                                      p_error text default null,
                                                      p_attached jsonb default '[]'::jsonb,
                                                      p_grace_seconds integer default 3600) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  st public.registry_state;
  v_missing integer := 0;
  v_interrupted integer := 0;
  r public.registry_runs;
begin
  if p_status is null or p_status not in ('completed', 'partial', 'failed') then
    perform private.fail('DC400', 'status must be completed, partial or failed');
  end if;
  if p_figures is null or jsonb_typeof(p_figures) <> 'object' then
    perform private.fail('DC400', 'figures must be an object');
  end if;
  select * into st from public.registry_state for update;
  -- Files this run attached for documents whose upload died before the attach: adopt their state.
  update public.documents d set status = private.registry_status(a.status), vector_store_id = a.vector_store_id,
         openai_file_id = a.file_id, registry_seen_at = now(), updated_at = now()
    from jsonb_to_recordset(coalesce(p_attached, '[]'::jsonb)) as a(document_id uuid, file_id text,
                                                                   vector_store_id text, status text)
   where d.id = a.document_id and d.status in ('uploading', 'missing', 'processing', 'ready')
     and (d.openai_file_id is null or d.openai_file_id = a.file_id);
  if p_cycle_complete then
    update public.documents set status = 'missing', error = 'OpenAI no longer holds this file', updated_at = now()
     where status in ('processing', 'ready') and created_at < st.cycle_started_at
       and (registry_seen_at is null or registry_seen_at < st.cycle_started_at);
    get diagnostics v_missing = row_count;
    -- The files phase adopts an uploading row whose file OpenAI holds (same grace); what is left
    -- never reached OpenAI (the process or the database went away first): nothing to adopt or remove.
    update public.documents
       set status = 'failed', updated_at = now(),
           error = 'upload_interrupted: The upload stopped before OpenAI held the file; upload it again.'
     where status = 'uploading' and openai_file_id is null
       and updated_at < least(st.cycle_started_at, now() - make_interval(secs => coalesce(p_grace_seconds, 3600)));
    get diagnostics v_interrupted = row_count;
    update public.registry_state set cursor = null, cycle_started_at = now() where id;
  else
    update public.registry_state set cursor = p_cursor where id;
  end if;
  update public.registry_runs set status = p_status, finished_at = now(), error = left(p_error, 1000),
         figures = p_figures || jsonb_build_object('missing', coalesce((p_figures ->> 'missing')::integer, 0) + v_missing,
                                                   'interrupted', v_interrupted)
   where id = p_run_id and status = 'running'
  returning * into r;
  if not found then
    perform private.fail('DC409', 'registry run is not running');
  end if;
  return to_jsonb(r) - 'lease_until';
end;
$$;
revoke execute on function public.registry_finish_run(bigint, text, jsonb, jsonb, boolean, text, jsonb, integer)
  from public, anon, authenticated;
grant execute on function public.registry_finish_run(bigint, text, jsonb, jsonb, boolean, text, jsonb, integer)
  to service_role;

-- registry_last_run: the latest run and its figures.
create or replace function public.registry_last_run() returns jsonb
language sql volatile security definer set search_path = ''
as $$
  select to_jsonb(r) - 'lease_until' from public.registry_runs r order by r.started_at desc, r.id desc limit 1
$$;
revoke execute on function public.registry_last_run() from public, anon, authenticated;
grant execute on function public.registry_last_run() to service_role;
