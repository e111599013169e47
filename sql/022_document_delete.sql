-- Deleting a document: the owner starts it (user API), the backend removes the file from every store
-- holding it and deletes it at OpenAI, then marks the row deleted (backend API). A delete nobody
-- finished is finished by the registry refresh (registry_pending_deletes, registry_mark_deleted).

-- begin_document_delete (user API): owner only (a reader gets DC403). Marks the row deleting; the
-- backend then removes it at OpenAI (document_delete_targets, finish_document_delete), and the
-- registry refresh finishes a delete nobody finished. No OpenAI ids in the answer.
create or replace function public.begin_document_delete(p_document_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (private.active_profile()).id;
  d public.documents := private.owned_document(p_document_id, v_uid);
begin
  update public.documents set status = 'deleting', updated_at = now()
   where id = d.id and status <> 'deleted' returning * into d;
  return private.document_json(d, v_uid);
end;
$$;
revoke execute on function public.begin_document_delete(uuid) from public, anon;
grant execute on function public.begin_document_delete(uuid) to authenticated;

-- What must be removed at OpenAI for a deleting document: its file and every store holding it (the
-- owner's and each accepted grantee's).
create or replace function private.delete_targets(d public.documents) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select jsonb_build_object('document_id', d.id, 'openai_file_id', d.openai_file_id,
    'vector_store_ids', (select coalesce(jsonb_agg(distinct s.store), '[]'::jsonb) from (
       select d.vector_store_id as store
       union all
       select up.vector_store_id from public.document_access a
         join public.user_profiles up on up.id = a.user_id where a.document_id = d.id) s
     where s.store is not null))
$$;

-- document_delete_targets (backend API): the owner's deleting document's file and stores (DC409 when
-- no delete was started).
create or replace function public.document_delete_targets(p_user_id uuid, p_document_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  d public.documents := private.acting_owned_document(p_user_id, p_document_id);
begin
  if d.status <> 'deleting' then
    perform private.fail('DC409', 'document delete was not started');
  end if;
  return private.delete_targets(d);
end;
$$;
revoke execute on function public.document_delete_targets(uuid, uuid) from public, anon, authenticated;
grant execute on function public.document_delete_targets(uuid, uuid) to service_role;

-- finish_document_delete (backend API): OpenAI no longer holds the file; the row is marked deleted,
-- its shares and invitations are gone.
create or replace function public.finish_document_delete(p_user_id uuid, p_document_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  d public.documents := private.acting_owned_document(p_user_id, p_document_id);
begin
  delete from public.document_shares where document_id = d.id;
  delete from public.document_access where document_id = d.id;
  update public.documents set status = 'deleted', deleted_at = now(), updated_at = now()
   where id = d.id and status = 'deleting' returning * into d;
  if not found then
    perform private.fail('DC409', 'document delete was not started');
  end if;
  return private.document_json(d, d.user_id);
end;
$$;
revoke execute on function public.finish_document_delete(uuid, uuid) from public, anon, authenticated;
grant execute on function public.finish_document_delete(uuid, uuid) to service_role;
