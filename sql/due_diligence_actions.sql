-- Due diligence: the actions due on $today (DuckDB), one row each, for the feed
-- due_diligence/actions.jsonl; the rule in words and its reference are
-- reporting.diligence_cycle.due_actions, which a property test holds this query to.
-- Input cycle_out: the cycle as due_diligence_cycle.sql leaves it. Days count from the original
-- request (its day is day 0): the first reminder from $reminder_1_days after the request, the
-- second $reminder_2_days after the first (but by its last day, and after the first), the measure from day $measure_day and after the
-- second reminder, by day $last_day; their last days $reminder_1_latest, $reminder_2_latest,
-- $last_day. A request's last day is the end of due diligence (PStTG § 20(1)): 31 December of
-- the period, or of the second period for a seller registered by $since (PStTG § 4(3)).
with c as (
    select
        *,
        list_filter(outstanding, lambda i: list_contains(invalid, i)) as outstanding_invalid
    from cycle_out
),

steps as (
    select
        *,
        case when reminder_1_on is null then $reminder_1 when reminder_2_on is null then $reminder_2 else $measure end
            as step,
        case
            when reminder_1_on is null then requested_on + $reminder_1_days
            when reminder_2_on is null
                then greatest(least(reminder_1_on + $reminder_2_days, requested_on + $reminder_2_latest), reminder_1_on + 1)
            else greatest(requested_on + $measure_day, reminder_2_on + 1)
        end as step_due,
        requested_on + case
            when reminder_1_on is null then $reminder_1_latest
            when reminder_2_on is null then $reminder_2_latest
            else $last_day
        end as step_latest
    from c
    where requested_on is not null and len(outstanding) > 0 and measure_on is null
),

actions as (
    select
        seller_id,
        $notice as action,
        []::varchar[] as items_missing,
        []::varchar[] as items_invalid,
        notice_due as due_date,
        make_date(year(notice_due), 12, 31) as latest_date,
        null::date as request_date,
        null::varchar as measure
    from c
    where in_scope and notice_on is null and notice_due is not null

    union all

    select
        seller_id,
        $request,
        needs,
        invalid,
        request_due,
        make_date(
            case
                when registered_at is not null and registered_at <= $since then greatest(year(request_due), $second_year)
                else year(request_due)
            end,
            12,
            31
        ),
        null,
        null
    from c
    where requested_on is null and request_due is not null

    union all

    select seller_id, step, outstanding, outstanding_invalid, step_due, step_latest, requested_on, null
    from steps
    where step_due <= $today

    union all

    select seller_id, $release, []::varchar[], []::varchar[], release_due, release_due, requested_on, measure
    from c
    where requested_on is not null and measure_on is not null and len(outstanding) = 0 and release_due is not null
),

final as (
    select
        seller_id,
        action,
        items_missing,
        items_invalid,
        due_date,
        latest_date,
        $today as date,
        request_date,
        case when request_date is not null then $today - request_date end as day,
        $today > latest_date as overdue,
        list_contains($measures, action) and request_date is not null and $today - request_date >= $last_day
            as reaches_day_180,
        measure,
        list_position($actions, action) as action_rank
    from actions
)

select * from final
