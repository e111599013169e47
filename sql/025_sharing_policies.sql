-- Direct table reads under sharing by invitation (PostgREST's /rest/v1/<table> with a user's token).
-- document_access holds accepted shares only; the policies read through indexes (the OR of two
-- indexable conditions becomes a BitmapOr), and a user reading documents directly sees no OpenAI id,
-- no store and no owner id: the columns they may select are listed.

drop policy if exists documents_select_readable on public.documents;
create policy documents_select_readable on public.documents
  for select to authenticated using (
    user_id = (select auth.uid())
    or id = any (array(select da.document_id from public.document_access da where da.user_id = (select auth.uid())))
  );

-- A grantee sees their own access rows; an owner lists shares through list_document_shares, which
-- never names the grantee.
drop policy if exists document_access_select_involved on public.document_access;
drop policy if exists document_access_select_own on public.document_access;
create policy document_access_select_own on public.document_access
  for select to authenticated using (user_id = (select auth.uid()));

revoke select on public.documents from authenticated;
grant select (id, name, mime_type, size_bytes, sha256, status, error, usage_bytes, created_at, updated_at,
              deleted_at) on public.documents to authenticated;
revoke select on public.document_access from authenticated;
grant select (document_id, user_id, created_at) on public.document_access to authenticated;
