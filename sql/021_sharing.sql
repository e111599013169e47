-- Sharing by invitation (DESIGN.md D8). The owner invites an email; the answer is the same whether
-- or not a user has that email. The grantee, matched by their confirmed email, lists, accepts or
-- declines, and may leave later; only an accepted share reaches the grantee's vector store and
-- search. Steps with an OpenAI side effect (accept: attach; leave and revoke: detach) are backend
-- API, since their results name the file and the store; the rest is user API and carries no OpenAI
-- id, no grantee id and no store.

-- The normalised email of an invitation, or DC400.
create or replace function private.invitation_email(p_email text) returns text
language plpgsql immutable set search_path = ''
as $$
declare
  v text := lower(btrim(p_email));
begin
  if v is null or char_length(v) > 320 or v !~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+$' then
    perform private.fail('DC400', 'a valid email is required');
  end if;
  return v;
end;
$$;

-- The user's confirmed email (auth.users.email_confirmed_at set), normalised; DCE03 when the email
-- is not confirmed, since an unconfirmed address proves nothing about who may read an invitation.
create or replace function private.confirmed_email(p_user_id uuid) returns text
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_email text;
begin
  select lower(btrim(u.email)) into v_email from auth.users u
   where u.id = p_user_id and u.email_confirmed_at is not null and u.email is not null;
  if v_email is null then
    perform private.fail('DCE03', 'confirm your email address to see invitations');
  end if;
  return v_email;
end;
$$;

create or replace function private.share_json(s public.document_shares) returns jsonb
language sql stable set search_path = ''
as $$
  select jsonb_build_object('share_id', s.id, 'document_id', s.document_id, 'email', s.email, 'status', s.status,
                            'created_at', s.created_at, 'updated_at', s.updated_at)
$$;

-- share_document (user API): the owner invites an email to read a processed document (a reader gets
-- DC403, anyone else DC404; an unprocessed document DC409; more than 100 invitations DC409).
-- Answers {share_id, email, status} alike whether or not the email is registered: no user is looked
-- up. Inviting the same email again returns the existing invitation unchanged.
create or replace function public.share_document(p_document_id uuid, p_email text) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.active_profile();
  d public.documents := private.owned_document(p_document_id, p.id);
  v_email text := private.invitation_email(p_email);
  s public.document_shares;
begin
  if v_email = lower(btrim(p.email)) then
    perform private.fail('DC400', 'you already own this document');
  end if;
  if d.status not in ('processing', 'ready') then
    perform private.fail('DC409', 'only a processed document can be shared');
  end if;
  select * into s from public.document_shares where document_id = d.id and email = v_email;
  if not found then
    if (select count(*) from public.document_shares where document_id = d.id) >= 100 then
      perform private.fail('DC409', 'a document can have at most 100 invitations');
    end if;
    insert into public.document_shares (document_id, owner_id, email) values (d.id, p.id, v_email)
    returning * into s;
  end if;
  return jsonb_build_object('share_id', s.id, 'email', s.email, 'status', s.status);
end;
$$;
revoke execute on function public.share_document(uuid, text) from public, anon;
grant execute on function public.share_document(uuid, text) to authenticated;

-- list_document_shares (user API): the owner's invitations for one document (email and status; never
-- the grantee's id or store). A reader gets DC403, anyone else DC404.
create or replace function public.list_document_shares(p_document_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.active_profile();
  d public.documents := private.owned_document(p_document_id, p.id);
begin
  return jsonb_build_object('items', (
    select coalesce(jsonb_agg(private.share_json(s) order by s.created_at, s.id), '[]'::jsonb)
      from public.document_shares s where s.document_id = d.id));
end;
$$;
revoke execute on function public.list_document_shares(uuid) from public, anon;
grant execute on function public.list_document_shares(uuid) to authenticated;

-- list_document_invitations (user API): the pending invitations to the caller's confirmed email
-- (DCE03 when unconfirmed), newest first, at most 100, with what the caller needs to decide: the
-- document's name, type and size and who invited them.
create or replace function public.list_document_invitations() returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.active_profile();
  v_email text := private.confirmed_email(p.id);
begin
  return jsonb_build_object('items', (
    select coalesce(jsonb_agg(private.share_json(t.s) || jsonb_build_object(
             'name', t.name, 'mime_type', t.mime_type, 'size_bytes', t.size_bytes, 'invited_by', t.invited_by)
             order by (t.s).created_at desc, (t.s).id desc), '[]'::jsonb)
      from (select s, d.name, d.mime_type, d.size_bytes, o.email as invited_by
              from public.document_shares s
              join public.documents d on d.id = s.document_id
              join public.user_profiles o on o.id = s.owner_id
             where s.email = v_email and s.status = 'invited' and d.status in ('processing', 'ready')
               and s.owner_id <> p.id
             order by s.created_at desc, s.id desc limit 100) t));
end;
$$;
revoke execute on function public.list_document_invitations() from public, anon;
grant execute on function public.list_document_invitations() to authenticated;

-- The invitation p_share_id addressed to the user's confirmed email, locked; DC404 otherwise (an
-- invitation to someone else answers as a missing one).
create or replace function private.my_invitation(p_user_id uuid, p_share_id uuid) returns public.document_shares
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_email text := private.confirmed_email(p_user_id);
  s public.document_shares;
begin
  select * into s from public.document_shares
   where id = p_share_id and email = v_email and owner_id <> p_user_id for update;
  if not found then
    perform private.fail('DC404', 'invitation not found');
  end if;
  return s;
end;
$$;

-- accept_document_invitation (backend API): the grantee accepts; the share gets its document_access
-- row. Accepting again is a no-op that answers the same, so a failed attach can be retried. A
-- declined or left invitation, or one whose document is gone, is DC404. Returns what must be
-- attached at OpenAI: the owner's file and the grantee's store (null when they have none yet).
create or replace function public.accept_document_invitation(p_user_id uuid, p_share_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.backend_profile(p_user_id);
  s public.document_shares := private.my_invitation(p.id, p_share_id);
  d public.documents;
begin
  select * into d from public.documents where id = s.document_id and status in ('processing', 'ready') for share;
  if not found or s.status not in ('invited', 'accepted') then
    perform private.fail('DC404', 'invitation not found');
  end if;
  update public.document_shares set status = 'accepted', grantee_id = p.id, updated_at = now()
   where id = s.id and status in ('invited', 'accepted') returning * into s;
  insert into public.document_access (document_id, user_id, granted_by, share_id)
  values (d.id, p.id, d.user_id, s.id)
  on conflict (document_id, user_id) do nothing;
  return jsonb_build_object('share_id', s.id, 'document_id', d.id, 'status', s.status, 'owner_id', d.user_id,
                            'openai_file_id', d.openai_file_id, 'vector_store_id', p.vector_store_id);
end;
$$;
revoke execute on function public.accept_document_invitation(uuid, uuid) from public, anon, authenticated;
grant execute on function public.accept_document_invitation(uuid, uuid) to service_role;

-- decline_document_invitation (user API): the grantee declines a pending invitation (an accepted one
-- is left, not declined: DC409). Nothing reaches their store.
create or replace function public.decline_document_invitation(p_share_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.active_profile();
  s public.document_shares := private.my_invitation(p.id, p_share_id);
begin
  if s.status = 'accepted' then
    perform private.fail('DC409', 'an accepted share is left, not declined');
  end if;
  if s.status <> 'invited' then
    perform private.fail('DC404', 'invitation not found');
  end if;
  update public.document_shares set status = 'declined', updated_at = now()
   where id = s.id and status = 'invited' returning * into s;
  return jsonb_build_object('share_id', s.id, 'status', s.status);
end;
$$;
revoke execute on function public.decline_document_invitation(uuid) from public, anon;
grant execute on function public.decline_document_invitation(uuid) to authenticated;

-- leave_document_share (backend API): the grantee gives an accepted share back (DC404 when they
-- hold none). Returns what must be detached at OpenAI: the file and the grantee's own store.
create or replace function public.leave_document_share(p_user_id uuid, p_document_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  p public.user_profiles := private.backend_profile(p_user_id);
  v_share uuid;
  v_file text;
begin
  delete from public.document_access where document_id = p_document_id and user_id = p.id returning share_id into v_share;
  if not found then
    perform private.fail('DC404', 'document not found');
  end if;
  update public.document_shares set status = 'left', updated_at = now() where id = v_share;
  select openai_file_id into v_file from public.documents where id = p_document_id;
  return jsonb_build_object('document_id', p_document_id, 'openai_file_id', v_file,
                            'vector_store_id', p.vector_store_id);
end;
$$;
revoke execute on function public.leave_document_share(uuid, uuid) from public, anon, authenticated;
grant execute on function public.leave_document_share(uuid, uuid) to service_role;

-- revoke_document_share (backend API): the owner withdraws an invitation or an accepted share (a
-- reader gets DC403, an unknown share DC404). Returns what must be detached at OpenAI: the file and
-- the grantee's store when the share had been accepted (null otherwise).
create or replace function public.revoke_document_share(p_user_id uuid, p_document_id uuid, p_share_id uuid)
returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  d public.documents := private.acting_owned_document(p_user_id, p_document_id);
  v_grantee uuid;
begin
  select a.user_id into v_grantee from public.document_access a where a.share_id = p_share_id and a.document_id = d.id;
  delete from public.document_shares where id = p_share_id and document_id = d.id;
  if not found then
    perform private.fail('DC404', 'share not found');
  end if;
  return jsonb_build_object('share_id', p_share_id, 'document_id', d.id, 'openai_file_id', d.openai_file_id,
    'vector_store_id', (select vector_store_id from public.user_profiles where id = v_grantee));
end;
$$;
revoke execute on function public.revoke_document_share(uuid, uuid, uuid) from public, anon, authenticated;
grant execute on function public.revoke_document_share(uuid, uuid, uuid) to service_role;
