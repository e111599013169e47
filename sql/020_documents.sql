-- Profiles and documents: the file registry. Every function: security definer, fixed search_path,
-- checks the caller itself, one transaction. EXECUTE is granted beside each function.

-- get_my_profile: profile on first sight (create or touch) and the caller's budget.
create or replace function public.get_my_profile() returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.active_profile();
begin
  return jsonb_build_object('id', p.id, 'email', p.email, 'role', p.role, 'disabled', p.disabled,
    'vector_store_id', p.vector_store_id, 'created_at', p.created_at, 'last_seen_at', p.last_seen_at,
    'budget', private.budget_json(p));
end;
$$;
revoke execute on function public.get_my_profile() from public, anon;
grant execute on function public.get_my_profile() to authenticated;

-- create_document: records an upload before any side effect. The same bytes (sha256) uploaded again
-- by the same user return the existing document (created = false); a failed or abandoned upload of
-- the same bytes is taken over (created = true). Returns {document, created, vector_store_id}.
create or replace function public.create_document(p_name text, p_mime_type text, p_size_bytes bigint,
                                                  p_sha256 text) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.active_profile();
  v_name text := private.clean_text(p_name, 'name', 255);
  v_mime text := private.clean_text(p_mime_type, 'mime_type', 127);
  d public.documents;
begin
  if p_size_bytes is null or p_size_bytes <= 0 or p_size_bytes > 536870912 then
    perform private.fail('DC400', 'size_bytes must be between 1 and 536870912');
  end if;
  if p_sha256 is null or p_sha256 !~ '^[0-9a-f]{64}$' then
    perform private.fail('DC400', 'sha256 must be 64 lowercase hex characters');
  end if;

  select * into d from public.documents
   where user_id = p.id and sha256 = p_sha256 and status not in ('deleting', 'deleted') for update;
  if found then
    if d.status = 'failed' or (d.status = 'uploading' and d.updated_at < now() - interval '15 minutes') then
      update public.documents set status = 'uploading', error = null, name = v_name, mime_type = v_mime,
             updated_at = now()
       where id = d.id returning * into d;
      return jsonb_build_object('document', private.document_json(d, p.id), 'created', true,
                                'vector_store_id', p.vector_store_id);
    end if;
    return jsonb_build_object('document', private.document_json(d, p.id), 'created', false,
                              'vector_store_id', p.vector_store_id);
  end if;

  insert into public.documents (user_id, name, mime_type, size_bytes, sha256)
  values (p.id, v_name, v_mime, p_size_bytes, p_sha256)
  on conflict (user_id, sha256) where status not in ('deleting', 'deleted') do nothing
  returning * into d;
  if d.id is null then
    -- A concurrent upload of the same bytes won the race: that is the document.
    select * into d from public.documents
     where user_id = p.id and sha256 = p_sha256 and status not in ('deleting', 'deleted');
    return jsonb_build_object('document', private.document_json(d, p.id), 'created', false,
                              'vector_store_id', p.vector_store_id);
  end if;
  return jsonb_build_object('document', private.document_json(d, p.id), 'created', true,
                            'vector_store_id', p.vector_store_id);
end;
$$;
revoke execute on function public.create_document(text, text, bigint, text) from public, anon;
grant execute on function public.create_document(text, text, bigint, text) to authenticated;

-- set_user_vector_store: records a user's vector store on first need. The first writer wins; the
-- caller learns the winner and deletes its own store if it lost. Service role only.
create or replace function public.set_user_vector_store(p_user_id uuid, p_vector_store_id text) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_store text;
begin
  if p_vector_store_id is null or p_vector_store_id !~ '^[A-Za-z0-9_-]{1,100}$' then
    perform private.fail('DC400', 'invalid vector store id');
  end if;
  update public.user_profiles set vector_store_id = coalesce(vector_store_id, p_vector_store_id)
   where id = p_user_id returning vector_store_id into v_store;
  if not found then
    perform private.fail('DC404', 'user not found');
  end if;
  return jsonb_build_object('user_id', p_user_id, 'vector_store_id', v_store,
                            'won', v_store = p_vector_store_id);
end;
$$;
revoke execute on function public.set_user_vector_store(uuid, text) from public, anon, authenticated;
grant execute on function public.set_user_vector_store(uuid, text) to service_role;

-- finish_document_upload: the OpenAI file exists and is in the owner's store; the row says so.
create or replace function public.finish_document_upload(p_document_id uuid, p_openai_file_id text,
                                                         p_vector_store_id text, p_status text) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  d public.documents := private.owned_document(p_document_id, v_uid);
begin
  if p_status is null or p_status not in ('processing', 'ready') then
    perform private.fail('DC400', 'status must be processing or ready');
  end if;
  if p_openai_file_id is null or p_vector_store_id is null then
    perform private.fail('DC400', 'openai_file_id and vector_store_id are required');
  end if;
  if d.status <> 'uploading' then
    perform private.fail('DC409', 'document is not being uploaded');
  end if;
  update public.documents set openai_file_id = p_openai_file_id, vector_store_id = p_vector_store_id,
         status = p_status, error = null, updated_at = now()
   where id = d.id returning * into d;
  return private.document_json(d, v_uid);
end;
$$;
revoke execute on function public.finish_document_upload(uuid, text, text, text) from public, anon;
grant execute on function public.finish_document_upload(uuid, text, text, text) to authenticated;

-- fail_document_upload: an upload step failed; the row keeps the error and any OpenAI file id, so
-- the registry refresh can remove what was created.
create or replace function public.fail_document_upload(p_document_id uuid, p_error text,
                                                       p_openai_file_id text default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  d public.documents := private.owned_document(p_document_id, v_uid);
begin
  if d.status <> 'uploading' then
    perform private.fail('DC409', 'document is not being uploaded');
  end if;
  update public.documents set status = 'failed', error = left(coalesce(p_error, 'upload failed'), 1000),
         openai_file_id = coalesce(p_openai_file_id, openai_file_id), updated_at = now()
   where id = d.id returning * into d;
  return private.document_json(d, v_uid);
end;
$$;
revoke execute on function public.fail_document_upload(uuid, text, text) from public, anon;
grant execute on function public.fail_document_upload(uuid, text, text) to authenticated;

-- get_document: one document the caller may read (own or shared), else DC404.
create or replace function public.get_document(p_document_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
begin
  return private.document_json(private.readable_document(p_document_id, v_uid), v_uid);
end;
$$;
revoke execute on function public.get_document(uuid) from public, anon;
grant execute on function public.get_document(uuid) to authenticated;

-- record_document_status: what OpenAI reports for a document the caller may read (processing ->
-- ready or failed). Any other transition is DC409.
create or replace function public.record_document_status(p_document_id uuid, p_status text,
                                                         p_error text default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  d public.documents := private.readable_document(p_document_id, v_uid);
begin
  if p_status is null or p_status not in ('processing', 'ready', 'failed') then
    perform private.fail('DC400', 'status must be processing, ready or failed');
  end if;
  if d.status = p_status then
    return private.document_json(d, v_uid);
  end if;
  if d.status <> 'processing' then
    perform private.fail('DC409', 'document is not processing');
  end if;
  update public.documents
     set status = p_status, error = case when p_status = 'failed' then left(coalesce(p_error, 'processing failed'), 1000) end,
         updated_at = now()
   where id = d.id returning * into d;
  return private.document_json(d, v_uid);
end;
$$;
revoke execute on function public.record_document_status(uuid, text, text) from public, anon;
grant execute on function public.record_document_status(uuid, text, text) to authenticated;

-- list_documents: own and shared documents, newest first, keyset-paginated, optional status filter.
create or replace function public.list_documents(p_status text default null, p_limit integer default 20,
                                                 p_cursor text default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  v_limit integer := private.check_limit(p_limit);
  c record := private.decode_cursor(p_cursor);
  v_cursor_id uuid := private.cursor_uuid(c.id);
begin
  if p_status is not null and p_status not in ('uploading', 'processing', 'ready', 'failed', 'deleting', 'missing') then
    perform private.fail('DC400', 'unknown status filter');
  end if;
  return private.page_of((
    select coalesce(jsonb_agg(jsonb_build_object('item', private.document_json(t.doc, v_uid), 'ts', t.created_at,
                                                 'id', t.id) order by t.created_at desc, t.id desc), '[]'::jsonb)
      from (select * from (
              select d as doc, d.created_at, d.id from public.documents d
               where d.user_id = v_uid and d.status <> 'deleted' and (p_status is null or d.status = p_status)
                 and (c.ts is null or (d.created_at, d.id) < (c.ts, v_cursor_id))
              union all
              select d, d.created_at, d.id from public.documents d join public.document_access a on a.document_id = d.id
               where a.user_id = v_uid and d.status <> 'deleted' and (p_status is null or d.status = p_status)
                 and (c.ts is null or (d.created_at, d.id) < (c.ts, v_cursor_id))
            ) candidates order by created_at desc, id desc limit v_limit + 1) t), v_limit);
end;
$$;
revoke execute on function public.list_documents(text, integer, text) from public, anon;
grant execute on function public.list_documents(text, integer, text) to authenticated;

-- begin_document_delete: owner only (a reader gets DC403). Marks the row deleting and returns what
-- must be removed at OpenAI: the file and every vector store holding it (owner's and readers').
create or replace function public.begin_document_delete(p_document_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  d public.documents := private.owned_document(p_document_id, v_uid);
  v_stores jsonb;
begin
  update public.documents set status = 'deleting', updated_at = now() where id = d.id returning * into d;
  select coalesce(jsonb_agg(distinct s.store), '[]'::jsonb) into v_stores from (
    select d.vector_store_id as store
    union all
    select up.vector_store_id from public.document_access a
      join public.user_profiles up on up.id = a.user_id where a.document_id = d.id
  ) s where s.store is not null;
  return jsonb_build_object('document', private.document_json(d, v_uid), 'openai_file_id', d.openai_file_id,
                            'vector_store_ids', v_stores);
end;
$$;
revoke execute on function public.begin_document_delete(uuid) from public, anon;
grant execute on function public.begin_document_delete(uuid) to authenticated;

-- finish_document_delete: OpenAI no longer holds the file; the row is marked deleted and unshared.
create or replace function public.finish_document_delete(p_document_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  d public.documents := private.owned_document(p_document_id, v_uid);
begin
  if d.status <> 'deleting' then
    perform private.fail('DC409', 'document delete was not started');
  end if;
  delete from public.document_access where document_id = d.id;
  update public.documents set status = 'deleted', deleted_at = now(), updated_at = now()
   where id = d.id returning * into d;
  return private.document_json(d, v_uid);
end;
$$;
revoke execute on function public.finish_document_delete(uuid) from public, anon;
grant execute on function public.finish_document_delete(uuid) to authenticated;

-- share_document: the owner gives another user (by email) read access. Returns what the file must
-- join at OpenAI: the grantee's vector store (null when the grantee has none yet).
create or replace function public.share_document(p_document_id uuid, p_email text) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  d public.documents := private.owned_document(p_document_id, v_uid);
  g public.user_profiles;
  v_created boolean;
begin
  if p_email is null or btrim(p_email) = '' or char_length(p_email) > 320 then
    perform private.fail('DC400', 'email is required');
  end if;
  select * into g from public.user_profiles where lower(email) = lower(btrim(p_email)) order by created_at limit 1;
  if not found then
    perform private.fail('DC404', 'no user with that email');
  end if;
  if g.id = v_uid then
    perform private.fail('DC400', 'you already own this document');
  end if;
  if d.status not in ('processing', 'ready') then
    perform private.fail('DC409', 'only a processed document can be shared');
  end if;
  insert into public.document_access (document_id, user_id, granted_by) values (d.id, g.id, v_uid)
  on conflict do nothing;
  v_created := found;
  return jsonb_build_object('document_id', d.id, 'user_id', g.id, 'email', g.email,
    'vector_store_id', g.vector_store_id, 'openai_file_id', d.openai_file_id, 'created', v_created);
end;
$$;
revoke execute on function public.share_document(uuid, text) from public, anon;
grant execute on function public.share_document(uuid, text) to authenticated;

-- revoke_document_access: the owner takes a reader's access back; returns the store to detach from.
create or replace function public.revoke_document_access(p_document_id uuid, p_user_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  d public.documents := private.owned_document(p_document_id, v_uid);
  v_store text;
begin
  delete from public.document_access where document_id = d.id and user_id = p_user_id;
  if not found then
    perform private.fail('DC404', 'that user has no access');
  end if;
  select vector_store_id into v_store from public.user_profiles where id = p_user_id;
  return jsonb_build_object('document_id', d.id, 'user_id', p_user_id, 'vector_store_id', v_store,
                            'openai_file_id', d.openai_file_id);
end;
$$;
revoke execute on function public.revoke_document_access(uuid, uuid) from public, anon;
grant execute on function public.revoke_document_access(uuid, uuid) to authenticated;

-- list_document_access: who can read one of the caller's documents.
create or replace function public.list_document_access(p_document_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  d public.documents := private.owned_document(p_document_id, v_uid);
begin
  return (select coalesce(jsonb_agg(jsonb_build_object('user_id', a.user_id, 'email', up.email,
                                                       'created_at', a.created_at) order by a.created_at), '[]'::jsonb)
            from public.document_access a join public.user_profiles up on up.id = a.user_id
           where a.document_id = d.id);
end;
$$;
revoke execute on function public.list_document_access(uuid) from public, anon;
grant execute on function public.list_document_access(uuid) to authenticated;
