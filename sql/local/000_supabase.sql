-- What a Supabase project provides and the project's SQL relies on or must survive, created for local
-- use only, the way Supabase's own init scripts create it (supabase/postgres migrations/db): the API
-- roles with their attributes and statement timeouts, the `authenticator` login role PostgREST uses,
-- a non-superuser owner for the migrations, schema auth with auth.users, auth.uid() / auth.role() /
-- auth.email() / auth.jwt() reading PostgREST's request.jwt.claims, and Supabase's default privileges
-- on schema public. Applied by the migrator to a plain PostgreSQL (target local) as a superuser, as
-- Supabase applies its init scripts; NEVER to a real Supabase project (the migrator detects its auth
-- schema and refuses).

do $$
begin
  -- PostgREST's roles: nologin, reached only by `set role` from authenticator.
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  -- PostgREST logs in as authenticator; noinherit: it holds no rights of its own beyond `set role`.
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  -- The migrations' owner, with the attributes Supabase gives its `postgres` role (demoted: no
  -- superuser; createrole, createdb, bypassrls). Named db_owner here because the embedded server's
  -- bootstrap superuser already has the name postgres.
  if not exists (select 1 from pg_roles where rolname = 'db_owner') then
    create role db_owner login nosuperuser createrole createdb bypassrls;
  end if;
end
$$;

alter role anon nosuperuser noinherit nologin nobypassrls;
alter role authenticated nosuperuser noinherit nologin nobypassrls;
alter role service_role nosuperuser noinherit nologin bypassrls;
alter role authenticator nosuperuser noinherit login nobypassrls;
alter role db_owner nosuperuser createrole createdb bypassrls login;

grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to db_owner;

-- As on Supabase, the owner role owns the database, so schema public (owned by pg_database_owner
-- since PostgreSQL 15) is its to change.
do $$
begin
  execute format('alter database %I owner to db_owner', current_database());
end
$$;

-- Supabase's timeouts (init script and docs "Timeouts"): per API role, and the login role's own.
-- PostgREST (v12+) applies the impersonated role's settings inside each request's transaction.
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';

create schema if not exists auth;
comment on schema auth is 'docchat local emulation of Supabase';

create table if not exists auth.users (
  id uuid primary key default gen_random_uuid(),
  email text unique,
  raw_app_meta_data jsonb not null default '{}'::jsonb,
  raw_user_meta_data jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);
-- Supabase Auth sets this when the user confirms their email address.
alter table auth.users add column if not exists email_confirmed_at timestamptz;
-- As Supabase Auth has it: true for a user of an anonymous sign-in (who has no email).
alter table auth.users add column if not exists is_anonymous boolean not null default false;

create or replace function auth.uid() returns uuid
language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email() returns text
language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

create or replace function auth.jwt() returns jsonb
language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

grant usage on schema auth to anon, authenticated, service_role;
grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt() to anon, authenticated, service_role;
grant select on auth.users to service_role;
grant usage on schema auth to db_owner;
grant select, references on auth.users to db_owner;
grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt() to db_owner;

-- Supabase's defaults for schema public: every API role may use it, and new objects made by the
-- owner (or the superuser) are granted to all of them, so the project's migrations must revoke what
-- they do not want, sequences included.
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges for role db_owner in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges for role db_owner in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges for role db_owner in schema public grant all on functions to anon, authenticated, service_role;
