-- Usage and cost. The report a user reads is get_usage_report (045_usage_reports.sql), the admin
-- report admin_usage_report (055_admin_reports.sql); both read the daily rollup (public.usage_daily)
-- and take their range from private.utc_range.
--
-- What an earlier version of this file defined is dropped here, so a database made by it ends up
-- with one implementation of each report (every statement is a no-op on a new database).
drop function if exists public.get_usage_summary(date, date);
drop function if exists private.usage_report(uuid, date, date);
drop function if exists private.usage_range(date, date);
