-- OpenAI objects that no row claims. Service role only.
--
-- A vector store is made before the database records it (OpenAI gives its id only on creation), so a
-- store can exist that no user_profiles or documents row names: a create whose answer was lost, or the
-- loser of two concurrent first uploads when its cleanup failed. The scheduled refresh lists the
-- service's stores, asks here which of them are unclaimed, and deletes those past the grace period.

create index if not exists documents_vector_store_idx on public.documents (vector_store_id)
  where vector_store_id is not null;

-- find_unclaimed_vector_stores: of the given vector store ids, those that no user profile and no
-- document (in any status) names, in the order given. Reads only; one round trip per page of stores.
-- p_vector_store_ids is a JSON array of strings (null: none); more than 1000 ids, or anything but an
-- array of strings, is refused (DC400). Answers a JSON array of strings.
create or replace function public.find_unclaimed_vector_stores(p_vector_store_ids jsonb) returns jsonb
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_ids jsonb := coalesce(p_vector_store_ids, '[]'::jsonb);
  v_unclaimed jsonb;
begin
  if jsonb_typeof(v_ids) <> 'array' or jsonb_array_length(v_ids) > 1000
     or exists (select 1 from jsonb_array_elements(v_ids) e where jsonb_typeof(e) <> 'string') then
    perform private.fail('DC400', 'vector_store_ids must be an array of at most 1000 strings');
  end if;
  select coalesce(jsonb_agg(ids.id order by ids.n), '[]'::jsonb)
    into v_unclaimed
    from jsonb_array_elements_text(v_ids) with ordinality as ids(id, n)
   where not exists (select 1 from public.user_profiles p where p.vector_store_id = ids.id)
     and not exists (select 1 from public.documents d where d.vector_store_id = ids.id);
  return v_unclaimed;
end;
$$;
revoke execute on function public.find_unclaimed_vector_stores(jsonb) from public, anon, authenticated;
grant execute on function public.find_unclaimed_vector_stores(jsonb) to service_role;
