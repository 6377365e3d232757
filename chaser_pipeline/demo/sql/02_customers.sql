create temp table customer_rows as
with base as (
    select
        i,
        bucket(i, 100) as cb,
        pick(['Anna', 'Ben', 'Chloe', 'David', 'Emma', 'Farid', 'Grace', 'Hugo', 'Isla', 'Jack',
              'Kiran', 'Laura', 'Mohammed', 'Niamh', 'Oliver', 'Priya', 'Rhys', 'Sofia', 'Tom',
              'Zoe'], 'c.first', i) as first_name,
        pick(['Smith', 'Jones', 'Taylor', 'Brown', 'Williams', 'Wilson', 'Patel', 'Khan',
              'Evans', 'Thomas', 'Roberts', 'O''Neill', 'Walker', 'Wright', 'Hughes', 'Nguyen'],
             'c.last', i) as last_name,
        pick(['Acme', 'Northwind', 'Blue Harbour', 'Kestrel', 'Oakfield', 'Riverside', 'Summit',
              'Greenway', 'Ironbridge', 'Lark', 'Meridian', 'Pennine', 'Quayside', 'Thistle',
              'Westgate', 'Yellowhammer'], 'c.co1', i) as co1,
        pick(['Building', 'Catering', 'Design', 'Engineering', 'Foods', 'Logistics', 'Media',
              'Plumbing', 'Print', 'Software', 'Supplies', 'Textiles', 'Trading', 'Travel'],
             'c.co2', i) as co2,
        pick(['Ltd', 'Ltd', 'Limited', 'LLP', 'plc', 'Group', '& Sons', 'Holdings'], 'c.co3', i)
            as co3,
        pick(['example.com', 'example.co.uk', 'example.org', 'example.net'], 'c.dom', i) as tld,
        lpad(ui('c.mob', i, 1000)::varchar, 3, '0') as mob3,
        lpad(ui('c.tel', i, 1000)::varchar, 3, '0') as tel3,
        lpad(ui('c.us', i, 100)::varchar, 2, '0') as us2,
        ui('c.mobfmt', i, 8) as mob_fmt,
        ui('c.telfmt', i, 6) as tel_fmt,
        ui('c.city', i, 8) as city_ix,
        -- Every customer row changes at most 60 days after this, well before the last event day.
        timestamp '2022-06-01' + secs(u('c.upd', i) * 136000000) as first_updated_at
    from range(1, getvariable('n_customers') + 1) t(i)
),
shaped as (
    select
        *,
        lower(replace(co1, ' ', '')) || '.' || tld as domain,
        cb in (2, 3, 4) as no_address,
        cb in (15, 16) as is_us
    from base
),
versions as (
    -- A duplicate key: the source holds the customer twice, the later row after a change.
    select *, 1 as version from shaped
    union all
    select *, 2 as version from shaped where cb = 17
)
select
    i,
    version,
    domain,
    format('C-{:06d}', i) as customer_id,
    case cb when 0 then null when 1 then '' else co1 || ' ' || co2 || ' ' || co3 end
        as company_name,
    case when u('c.nofirst', i) < 0.05 then null else first_name end as contact_first_name,
    case when u('c.nolast', i) < 0.05 then null else last_name end as contact_last_name,
    case
        when version = 2 then 'accounts@' || domain
        when cb = 5 then lower(first_name) || '@'
        when cb = 6 then lower(first_name) || '.' || domain
        when cb = 7 then lower(first_name) || ' ' || lower(last_name) || '@' || domain
        when cb between 8 and 11 then null
        -- Several addresses in one field: the first valid one is the customer's, the others
        -- contact persons; an invalid one among them is reported.
        when cb = 20 then lower(first_name) || '.' || lower(replace(last_name, '''', '')) || '@'
            || domain || '; accounts@' || domain
        when cb = 21 then 'accounts@' || domain || ', ' || lower(first_name) || '@' || domain
            || ', ' || lower(first_name) || '@'
        when cb = 22 then 'Finance@' || domain || ' ' || lower(first_name) || '@' || domain
        else lower(first_name) || '.' || lower(replace(last_name, '''', '')) || '@' || domain
    end as email,
    case
        when cb = 14 then pick(['tbc', '12'], 'c.junkphone', i)
        when is_us then '+1 415 555 01' || us2
        when tel_fmt = 0 then '(020) 7946 0' || tel3
        when tel_fmt = 1 then '020 7946 0' || tel3
        when tel_fmt = 2 then '+44 20 7946 0' || tel3
        when tel_fmt = 3 then '02079460' || tel3
        when tel_fmt = 4 then '0161 496 0' || tel3
        else null
    end as phone,
    case
        when version = 2 then '07700 900' || lpad(((ui('c.mob', i, 1000) + 1) % 1000)::varchar, 3, '0')
        when cb = 12 then 'n/a'
        when cb = 13 then '12'
        when cb = 15 then '+1 (415) 555-01' || us2
        when cb = 16 then '415-555-01' || us2
        when mob_fmt = 0 then '07700 900' || mob3
        when mob_fmt = 1 then '+44 7700 900' || mob3
        when mob_fmt = 2 then '0044 7700 900' || mob3
        when mob_fmt = 3 then '7700900' || mob3
        when mob_fmt = 4 then '07700900' || mob3
        when mob_fmt = 5 then '+447700900' || mob3
        when mob_fmt = 6 then '07700-900-' || mob3
        else null
    end as mobile,
    case
        when no_address or cb = 18 then null
        when is_us then (100 + ui('c.no', i, 900))::varchar || ' Market Street'
        else (1 + ui('c.no', i, 200))::varchar || ' ' || pick(['High Street', 'Station Road',
            'Church Lane', 'Mill Road', 'Victoria Street', 'Park Avenue', 'Kings Road',
            'The Green'], 'c.street', i)
    end as address_line1,
    case
        when no_address or cb in (18, 19) or u('c.line2', i) >= 0.3 then null
        else pick(['Unit 4', 'Suite 210', 'Floor 2', 'Riverside Business Park'], 'c.l2', i)
    end as address_line2,
    case
        when no_address or cb = 18 then null
        when is_us then 'San Francisco'
        else ['London', 'Manchester', 'Leeds', 'Bristol', 'Glasgow', 'Cardiff', 'Belfast',
              'Norwich'][1 + city_ix]
    end as city,
    case
        when no_address or cb in (18, 19) then null
        when is_us then 'CA'
        when u('c.region', i) < 0.5 then null
        else ['Greater London', 'Greater Manchester', 'West Yorkshire', 'Bristol', 'Glasgow City',
              'South Glamorgan', 'County Antrim', 'Norfolk'][1 + city_ix]
    end as region,
    case
        when no_address or cb = 19 then null
        when is_us then '94105'
        else ['EC1A', 'M1', 'LS1', 'BS1', 'G1', 'CF10', 'BT1', 'NR1'][1 + city_ix] || ' '
            || (1 + ui('c.pc', i, 9))::varchar
            || pick(['AA', 'BD', 'EX', 'HQ', 'NP', 'TY', 'WZ'], 'c.pc2', i)
    end as postal_code,
    case
        when no_address or cb = 19 then null
        when is_us then 'US'
        else pick(['GB', 'GB', 'GB', 'United Kingdom', 'UK'], 'c.country', i)
    end as country,
    u('c.archived', i) < 0.06 as is_archived,
    case
        when version = 1 then first_updated_at
        else first_updated_at + secs(3600 + u('c.upd2', i) * 5000000)
    end as updated_at
from versions
