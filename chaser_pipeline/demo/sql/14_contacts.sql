insert into ledger.contacts
with owners as (
    select i, customer_id, domain, updated_at
    from customer_rows
    where version = 1
),
people as (
    -- One to three contacts per customer, two on average.
    select *, unnest(generate_series(1, 1 + ui('ct.n', i, 3))) as m
    from owners
),
numbered as (
    select *, row_number() over (order by i, m) as k
    from people
),
shaped as (
    select
        k,
        bucket(k, 100) as kb,
        customer_id,
        domain,
        updated_at as customer_updated_at,
        pick(['Amir', 'Bea', 'Callum', 'Dora', 'Eli', 'Fern', 'Gus', 'Hana', 'Ivo', 'Jada',
              'Kai', 'Lena', 'Milo', 'Nia', 'Otto', 'Pia'], 'ct.first', k) as first_name,
        pick(['Adams', 'Baker', 'Clarke', 'Davies', 'Edwards', 'Fox', 'Green', 'Hall', 'Ito',
              'Jarvis', 'King', 'Lewis', 'Moore', 'O''Brien'], 'ct.last', k) as last_name,
        lpad(ui('ct.tel', k, 1000)::varchar, 3, '0') as tel3
    from numbered
),
versions as (
    select *, 2 as version from shaped
    union all
    -- A duplicate key: the contact landed twice, the older row before a change of name.
    select *, 1 as version from shaped where kb = 17
)
select
    format('CT-{:07d}', k) as contact_id,
    case
        -- a contact of a customer the extract never saw
        when kb = 0 then format('C-{:06d}', getvariable('n_customers') + 1 + ui('ct.unknown', k, 1000))
        else customer_id
    end as customer_id,
    case when version = 1 then 'Former' else first_name end as first_name,
    case when kb = 1 then null else last_name end as last_name,
    case
        when kb = 2 then lower(first_name) || '@'
        when kb = 3 then null
        -- two addresses for one person: the first is used, the other reported
        when kb = 4 then lower(first_name) || '@' || domain || '; '
            || lower(replace(last_name, '''', '')) || '@' || domain
        else lower(first_name) || '.' || lower(replace(last_name, '''', '')) || '@' || domain
    end as email,
    case
        when kb = 5 then 'ext. 12'
        when kb between 6 and 40 then '020 7946 1' || tel3
    end as phone,
    case
        when kb = 41 then 'n/a'
        when kb between 42 and 60 then '07700 901' || tel3
        when kb between 61 and 70 then '+44 7700 901' || tel3
    end as mobile,
    -- Contacts who left: archived in the ledger, archived in Chaser.
    kb between 7 and 16 as is_archived,
    customer_updated_at + secs(3600 * version + u('ct.upd', k) * 5000000) as updated_at
from versions
order by k, version
