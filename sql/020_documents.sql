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
    'created_at', p.created_at, 'last_seen_at', p.last_seen_at,
    'budget', private.budget_json(p));
end;
$$;
revoke execute on function public.get_my_profile() from public, anon;
grant execute on function public.get_my_profile() to authenticated;

-- Invitations to read a document, by normalised email (lower-case, trimmed), whether or not a user
-- has that email (no enumeration). Only the grantee, matched by their confirmed email, accepts; an
-- accepted share gets its document_access row (document_access holds accepted shares only, so every
-- reader of it -- RLS, readable_document, allowed_documents, the registry -- sees consent).
create table if not exists public.document_shares (
  id uuid primary key default gen_random_uuid(),
  document_id uuid not null references public.documents (id) on delete cascade,
  owner_id uuid not null references public.user_profiles (id) on delete cascade,
  email text not null check (char_length(email) between 3 and 320 and email = lower(btrim(email))),
  status text not null default 'invited' check (status in ('invited', 'accepted', 'declined', 'left')),
  grantee_id uuid references public.user_profiles (id) on delete cascade,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (document_id, email)
);
create index if not exists document_shares_invited_email_idx on public.document_shares (email, created_at desc)
  where status = 'invited';
create index if not exists document_shares_owner_idx on public.document_shares (owner_id);
create index if not exists document_shares_grantee_idx on public.document_shares (grantee_id);
alter table public.document_access add column if not exists share_id uuid
  references public.document_shares (id) on delete cascade;
create index if not exists document_access_share_idx on public.document_access (share_id);
alter table public.document_shares enable row level security;
revoke all on public.document_shares from anon, authenticated;
grant all on public.document_shares to service_role;

-- The old signatures, from before the backend API took the acting user as its first argument.
drop function if exists public.create_document(text, text, bigint, text);
drop function if exists public.finish_document_upload(uuid, text, text, text);
drop function if exists public.fail_document_upload(uuid, text, text);
drop function if exists public.record_document_status(uuid, text, text);
drop function if exists public.finish_document_delete(uuid);
drop function if exists public.share_document(uuid, text);
drop function if exists public.revoke_document_access(uuid, uuid);
drop function if exists public.list_document_access(uuid);

drop function if exists private.backend_profile(uuid);

-- The document the acting user owns, locked (the user must be active; a reader gets DC403, anyone
-- else DC404): the first line of every backend-API function on one document.
create or replace function private.acting_owned_document(p_user_id uuid, p_document_id uuid)
returns public.documents
language sql volatile security definer set search_path = ''
as $$
  select private.owned_document(p_document_id, (private.backend_profile(p_user_id)).id)
$$;

-- A document as the backend sees it: what a user sees plus the OpenAI ids. Only backend-API results
-- carry it.
create or replace function private.document_backend_json(d public.documents) returns jsonb
language sql stable set search_path = ''
as $$
  select private.document_json(d, d.user_id)
         || jsonb_build_object('owner_id', d.user_id, 'openai_file_id', d.openai_file_id,
                               'vector_store_id', d.vector_store_id)
$$;

-- The documents a user may read, in the given statuses: their own (documents_user_status_created_idx)
-- and those of accepted shares (document_access_user_idx, then the primary key). Never scans other
-- users' documents. allowed_documents and any per-request read of "what may I search" start here.
create or replace function private.readable_document_ids(
  p_user_id uuid, p_statuses text[] default array['processing', 'ready']) returns setof uuid
language sql stable security definer set search_path = ''
as $$
  select d.id from public.documents d where d.user_id = p_user_id and d.status = any (p_statuses)
  union all
  select d.id from public.document_access a join public.documents d on d.id = a.document_id
   where a.user_id = p_user_id and d.status = any (p_statuses)
$$;

-- create_document (backend API): records an upload before any side effect. The same bytes (sha256)
-- uploaded again by the same user return the existing document (created = false); a failed or
-- abandoned upload of the same bytes is taken over (created = true). A new document must fit the
-- user's quotas: at most p_max_documents live documents (DCQ13) and p_max_bytes bytes (DCQ13); the
-- profile row is locked, so concurrent uploads cannot both squeeze under a quota.
-- Returns {document, created, vector_store_id} (the user's own store, or null).
create or replace function public.create_document(p_user_id uuid, p_name text, p_mime_type text,
                                                  p_size_bytes bigint, p_sha256 text,
                                                  p_max_documents integer default 1000,
                                                  p_max_bytes bigint default 10737418240) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.backend_profile(p_user_id);
  v_name text := private.clean_text(p_name, 'name', 255);
  v_mime text := private.clean_text(p_mime_type, 'mime_type', 127);
  v_count bigint;
  v_bytes bigint;
  d public.documents;
begin
  if p_size_bytes is null or p_size_bytes <= 0 or p_size_bytes > 536870912 then
    perform private.fail('DC400', 'size_bytes must be between 1 and 536870912');
  end if;
  if p_sha256 is null or p_sha256 !~ '^[0-9a-f]{64}$' then
    perform private.fail('DC400', 'sha256 must be 64 lowercase hex characters');
  end if;
  if p_max_documents is null or p_max_documents < 1 or p_max_bytes is null or p_max_bytes < 1 then
    perform private.fail('DC400', 'quotas must be positive');
  end if;
  perform 1 from public.user_profiles where id = p.id for update;

  select * into d from public.documents
   where user_id = p.id and sha256 = p_sha256 and status not in ('deleting', 'deleted') for update;
  if found then
    if d.status = 'failed' or (d.status = 'uploading' and d.updated_at < now() - interval '15 minutes') then
      update public.documents set status = 'uploading', error = null, name = v_name, mime_type = v_mime,
             updated_at = now()
       where id = d.id and status in ('failed', 'uploading') returning * into d;
      return jsonb_build_object('document', private.document_json(d, p.id), 'created', true,
                                'vector_store_id', p.vector_store_id);
    end if;
    return jsonb_build_object('document', private.document_json(d, p.id), 'created', false,
                              'vector_store_id', p.vector_store_id);
  end if;

  select count(*), coalesce(sum(size_bytes), 0) into v_count, v_bytes from public.documents
   where user_id = p.id and status not in ('deleting', 'deleted');
  if v_count >= p_max_documents then
    perform private.fail('DCQ13', 'document quota reached: at most ' || p_max_documents || ' documents');
  end if;
  if v_bytes + p_size_bytes > p_max_bytes then
    perform private.fail('DCQ13', 'storage quota reached: at most ' || p_max_bytes || ' bytes');
  end if;

  insert into public.documents (user_id, name, mime_type, size_bytes, sha256)
  values (p.id, v_name, v_mime, p_size_bytes, p_sha256)
  returning * into d;
  return jsonb_build_object('document', private.document_json(d, p.id), 'created', true,
                            'vector_store_id', p.vector_store_id);
end;
$$;
revoke execute on function public.create_document(uuid, text, text, bigint, text, integer, bigint)
  from public, anon, authenticated;
grant execute on function public.create_document(uuid, text, text, bigint, text, integer, bigint) to service_role;

-- set_user_vector_store (backend API): records a user's vector store on first need. The first writer
-- wins; the caller learns the winner and deletes its own store if it lost. A store id already
-- recorded for another user is refused (DC409).
create or replace function public.set_user_vector_store(p_user_id uuid, p_vector_store_id text) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.backend_profile(p_user_id);
  v_store text;
begin
  if p_vector_store_id is null or p_vector_store_id !~ '^[A-Za-z0-9_-]{1,100}$' then
    perform private.fail('DC400', 'invalid vector store id');
  end if;
  begin
    update public.user_profiles set vector_store_id = coalesce(vector_store_id, p_vector_store_id)
     where id = p.id returning vector_store_id into v_store;
  exception when unique_violation then
    perform private.fail('DC409', 'that vector store belongs to another user');
  end;
  return jsonb_build_object('user_id', p.id, 'vector_store_id', v_store, 'won', v_store = p_vector_store_id);
end;
$$;
revoke execute on function public.set_user_vector_store(uuid, text) from public, anon, authenticated;
grant execute on function public.set_user_vector_store(uuid, text) to service_role;

-- finish_document_upload (backend API): the OpenAI file exists and is in the owner's store; the row
-- says so. The store must be the owner's recorded store and the file must not belong to another
-- document (DC409), so no document can point at another user's objects. Only an uploading document
-- moves (DC409 otherwise). Returns the document with its OpenAI ids.
create or replace function public.finish_document_upload(p_user_id uuid, p_document_id uuid, p_openai_file_id text,
                                                         p_vector_store_id text, p_status text) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.backend_profile(p_user_id);
  d public.documents := private.owned_document(p_document_id, p.id);
begin
  if p_status is null or p_status not in ('processing', 'ready') then
    perform private.fail('DC400', 'status must be processing or ready');
  end if;
  if p_openai_file_id is null or p_openai_file_id !~ '^[A-Za-z0-9_-]{1,100}$' or p_vector_store_id is null then
    perform private.fail('DC400', 'openai_file_id and vector_store_id are required');
  end if;
  if p.vector_store_id is distinct from p_vector_store_id then
    perform private.fail('DC409', 'that is not the owner''s vector store');
  end if;
  begin
    update public.documents set openai_file_id = p_openai_file_id, vector_store_id = p_vector_store_id,
           status = p_status, error = null, updated_at = now()
     where id = d.id and status = 'uploading' returning * into d;
  exception when unique_violation then
    perform private.fail('DC409', 'that file belongs to another document');
  end;
  if not found then
    perform private.fail('DC409', 'document is not being uploaded');
  end if;
  return private.document_backend_json(d);
end;
$$;
revoke execute on function public.finish_document_upload(uuid, uuid, text, text, text) from public, anon, authenticated;
grant execute on function public.finish_document_upload(uuid, uuid, text, text, text) to service_role;

-- fail_document_upload (backend API): an upload step failed; the row keeps the error and any OpenAI
-- file id, so the registry refresh can remove what was created. Only an uploading document moves.
create or replace function public.fail_document_upload(p_user_id uuid, p_document_id uuid, p_error text,
                                                       p_openai_file_id text default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  d public.documents := private.acting_owned_document(p_user_id, p_document_id);
begin
  if p_openai_file_id is not null and p_openai_file_id !~ '^[A-Za-z0-9_-]{1,100}$' then
    perform private.fail('DC400', 'invalid openai_file_id');
  end if;
  begin
    update public.documents set status = 'failed', error = left(coalesce(p_error, 'upload failed'), 1000),
           openai_file_id = coalesce(p_openai_file_id, openai_file_id), updated_at = now()
     where id = d.id and status = 'uploading' returning * into d;
  exception when unique_violation then
    perform private.fail('DC409', 'that file belongs to another document');
  end;
  if not found then
    perform private.fail('DC409', 'document is not being uploaded');
  end if;
  return private.document_backend_json(d);
end;
$$;
revoke execute on function public.fail_document_upload(uuid, uuid, text, text) from public, anon, authenticated;
grant execute on function public.fail_document_upload(uuid, uuid, text, text) to service_role;

-- get_document (user API): one document the caller may read (own or accepted share), else DC404.
-- No OpenAI ids.
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

-- get_document_placement (backend API): where the owner's document lives at OpenAI (file and store),
-- for a status refresh. A reader gets DC403, anyone else DC404.
create or replace function public.get_document_placement(p_user_id uuid, p_document_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  d public.documents := private.acting_owned_document(p_user_id, p_document_id);
begin
  return private.document_backend_json(d);
end;
$$;
revoke execute on function public.get_document_placement(uuid, uuid) from public, anon, authenticated;
grant execute on function public.get_document_placement(uuid, uuid) to service_role;

-- record_document_status (backend API): what OpenAI reports for the owner's processing document
-- (-> ready or failed). Under the row lock and conditional on 'processing', so a delete in flight
-- is never undone; any other transition is DC409, a repeat of the current status a no-op.
create or replace function public.record_document_status(p_user_id uuid, p_document_id uuid, p_status text,
                                                         p_error text default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  d public.documents := private.acting_owned_document(p_user_id, p_document_id);
begin
  if p_status is null or p_status not in ('processing', 'ready', 'failed') then
    perform private.fail('DC400', 'status must be processing, ready or failed');
  end if;
  if d.status = p_status then
    return private.document_json(d, d.user_id);
  end if;
  update public.documents
     set status = p_status, error = case when p_status = 'failed' then left(coalesce(p_error, 'processing failed'), 1000) end,
         updated_at = now()
   where id = d.id and status = 'processing' returning * into d;
  if not found then
    perform private.fail('DC409', 'document is not processing');
  end if;
  return private.document_json(d, d.user_id);
end;
$$;
revoke execute on function public.record_document_status(uuid, uuid, text, text) from public, anon, authenticated;
grant execute on function public.record_document_status(uuid, uuid, text, text) to service_role;

-- list_documents (user API): own documents and accepted shares, newest first, keyset-paginated,
-- optional status filter. Each branch reads through its index (own: documents_user_created_idx;
-- shared: document_access_user_idx then the primary key).
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
              (select d as doc, d.created_at, d.id from public.documents d
                where d.user_id = v_uid and d.status <> 'deleted' and (p_status is null or d.status = p_status)
                  and (c.ts is null or (d.created_at, d.id) < (c.ts, v_cursor_id))
                order by d.created_at desc, d.id desc limit v_limit + 1)
              union all
              select d, d.created_at, d.id from public.documents d join public.document_access a on a.document_id = d.id
               where a.user_id = v_uid and d.status <> 'deleted' and (p_status is null or d.status = p_status)
                 and (c.ts is null or (d.created_at, d.id) < (c.ts, v_cursor_id))
            ) candidates order by created_at desc, id desc limit v_limit + 1) t), v_limit);
end;
$$;
revoke execute on function public.list_documents(text, integer, text) from public, anon;
grant execute on function public.list_documents(text, integer, text) to authenticated;
