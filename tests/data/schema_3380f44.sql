-- The schema of a database made by release 3380f44 (before migrations), every table and
-- view created: the input of tests/test_migrations.py.
CREATE TABLE "commits" (
   "sha" TEXT PRIMARY KEY,
   "seq" INTEGER,
   "mainline" INTEGER,
   "parents" TEXT,
   "author_name" TEXT,
   "author_email" TEXT,
   "authored_at" TEXT,
   "committer_name" TEXT,
   "committer_email" TEXT,
   "committed_at" TEXT,
   "message" TEXT,
   "services_changed" INTEGER
);
CREATE TABLE "services" (
   "id" TEXT PRIMARY KEY,
   "namespace" TEXT,
   "name" TEXT,
   "path" TEXT,
   "config_id" TEXT,
   "version" TEXT,
   "status" TEXT,
   "status_message" TEXT,
   "removed" INTEGER,
   "owner" TEXT,
   "description" TEXT,
   "error_count" INTEGER,
   "warning_count" INTEGER,
   "first_commit" TEXT,
   "last_commit" TEXT,
   "last_updated" TEXT
);
CREATE TABLE "configs" (
   "id" TEXT PRIMARY KEY,
   "service_id" TEXT,
   "path" TEXT,
   "format" TEXT,
   "size" INTEGER,
   "raw" TEXT,
   "content" TEXT,
   "version" TEXT,
   "schema_version" TEXT,
   "parameters" TEXT,
   "dependencies" TEXT,
   "parse_error" TEXT,
   "parse_line" INTEGER,
   "parse_column" INTEGER,
   "problems" TEXT
);
CREATE TABLE "history" (
   "id" INTEGER PRIMARY KEY,
   "service_id" TEXT,
   "commit_sha" TEXT,
   "seq" INTEGER,
   "mainline" INTEGER,
   "change" TEXT,
   "path" TEXT,
   "old_path" TEXT,
   "config_id" TEXT,
   "previous_config_id" TEXT,
   "status" TEXT,
   "committed_at" TEXT,
   "author_name" TEXT,
   "author_email" TEXT
);
CREATE TABLE "status" (
   "id" INTEGER PRIMARY KEY,
   "service_id" TEXT,
   "commit_sha" TEXT,
   "seq" INTEGER,
   "mainline" INTEGER,
   "status" TEXT,
   "previous_status" TEXT,
   "message" TEXT,
   "checked_at" TEXT
);
CREATE TABLE "validation_errors" (
   "id" INTEGER PRIMARY KEY,
   "status_id" INTEGER,
   "service_id" TEXT,
   "commit_sha" TEXT,
   "seq" INTEGER,
   "mainline" INTEGER,
   "config_id" TEXT,
   "severity" TEXT,
   "kind" TEXT,
   "json_path" TEXT,
   "message" TEXT,
   "schema" TEXT
);
CREATE TABLE "parameter_changes" (
   "id" INTEGER PRIMARY KEY,
   "history_id" INTEGER,
   "service_id" TEXT,
   "commit_sha" TEXT,
   "seq" INTEGER,
   "mainline" INTEGER,
   "key" TEXT,
   "old_value" TEXT,
   "new_value" TEXT,
   "change" TEXT,
   "committed_at" TEXT,
   "author_name" TEXT
);
CREATE TABLE "dependencies" (
   "config_id" TEXT,
   "service_id" TEXT,
   "position" INTEGER,
   "depends_on" TEXT,
   "version_constraint" TEXT,
   "required" INTEGER,
   PRIMARY KEY ("config_id", "service_id", "position")
);
CREATE TABLE "ingest_runs" (
   "id" INTEGER PRIMARY KEY,
   "started_at" TEXT,
   "finished_at" TEXT,
   "source" TEXT,
   "branch" TEXT,
   "tip" TEXT,
   "commits_added" INTEGER,
   "commits_removed" INTEGER,
   "rewrite_detected" INTEGER,
   "outcome" TEXT,
   "message" TEXT,
   "duration_s" REAL
);
CREATE TABLE [events] ([id] INTEGER PRIMARY KEY AUTOINCREMENT, [kind] TEXT, [service_id] TEXT, [commit_sha] TEXT, [seq] INTEGER, [mainline] INTEGER, [occurred_at] TEXT, [payload] TEXT);
CREATE TABLE "aureacore_meta" (
   "key" TEXT PRIMARY KEY,
   "value" TEXT
);
CREATE INDEX "idx_commits_seq"
    ON "commits" ("seq");
CREATE INDEX "idx_commits_mainline_seq"
    ON "commits" ("mainline", "seq");
CREATE INDEX "idx_services_status"
    ON "services" ("status");
CREATE INDEX "idx_services_namespace"
    ON "services" ("namespace");
CREATE INDEX "idx_services_config_id"
    ON "services" ("config_id");
CREATE INDEX "idx_configs_service_id"
    ON "configs" ("service_id");
CREATE INDEX "idx_history_service_id_seq"
    ON "history" ("service_id", "seq");
CREATE INDEX "idx_history_commit_sha"
    ON "history" ("commit_sha");
CREATE INDEX "idx_history_mainline_seq"
    ON "history" ("mainline", "seq");
CREATE INDEX "idx_status_service_id_seq"
    ON "status" ("service_id", "seq");
CREATE INDEX "idx_status_commit_sha"
    ON "status" ("commit_sha");
CREATE INDEX "idx_validation_errors_service_id_seq"
    ON "validation_errors" ("service_id", "seq");
CREATE INDEX "idx_validation_errors_commit_sha"
    ON "validation_errors" ("commit_sha");
CREATE INDEX "idx_validation_errors_status_id"
    ON "validation_errors" ("status_id");
CREATE INDEX "idx_parameter_changes_service_id_key"
    ON "parameter_changes" ("service_id", "key");
CREATE INDEX "idx_parameter_changes_key"
    ON "parameter_changes" ("key");
CREATE INDEX "idx_parameter_changes_commit_sha"
    ON "parameter_changes" ("commit_sha");
CREATE INDEX "idx_parameter_changes_history_id"
    ON "parameter_changes" ("history_id");
CREATE INDEX "idx_dependencies_depends_on"
    ON "dependencies" ("depends_on");
CREATE INDEX "idx_events_kind_id"
    ON "events" ("kind", "id");
CREATE INDEX "idx_events_service_id_id"
    ON "events" ("service_id", "id");
CREATE INDEX "idx_events_commit_sha"
    ON "events" ("commit_sha");
CREATE INDEX "idx_dependencies_service_id"
    ON "dependencies" ("service_id");
CREATE VIEW "current_services" AS select * from services where removed = 0 order by id;
CREATE VIEW "services_in_error" AS select id, namespace, name, path, version, status_message, last_commit, last_updated
        from services where removed = 0 and status = 'ERROR' order by id;
CREATE VIEW "current_dependencies" AS select s.id as service_id, d.depends_on, d.version_constraint, d.required,
               t.version as depends_on_version, t.status as depends_on_status,
               case when t.id is null or t.removed = 1 then 0 else 1 end as depends_on_exists
        from services s
        join dependencies d on d.config_id = s.config_id and d.service_id = s.id
        left join services t on t.id = d.depends_on
        where s.removed = 0
        order by s.id, d.position;
CREATE VIEW "current_errors" AS select v.service_id, v.severity, v.kind, v.json_path, v.message, v.schema,
               v.commit_sha, v.config_id
        from validation_errors v
        join (select service_id, max(seq) as seq from status where mainline = 1
              group by service_id) latest
          on latest.service_id = v.service_id and latest.seq = v.seq
        join services s on s.id = v.service_id and s.removed = 0
        where v.mainline = 1
        order by v.service_id, v.severity, v.json_path;
CREATE TABLE "health_checks" (
   "id" INTEGER PRIMARY KEY,
   "service_id" TEXT,
   "url" TEXT,
   "checked_at" TEXT,
   "state" TEXT,
   "status_code" INTEGER,
   "latency_ms" REAL,
   "error" TEXT
);
CREATE INDEX "idx_health_checks_service_id_checked_at"
    ON "health_checks" ("service_id", "checked_at");
CREATE VIEW "current_health" AS with ranked as (
            select h.*,
                   row_number() over (partition by service_id
                                      order by checked_at desc, id desc) as rn,
                   case when state is lag(state) over (partition by service_id
                                                       order by checked_at, id)
                        then 0 else 1 end as changed
            from health_checks h
        ), since as (
            select service_id, max(checked_at) as since from ranked where changed = 1
            group by service_id
        )
        select r.service_id, r.state, r.status_code, r.latency_ms, r.error, r.url,
               r.checked_at, s.since
        from ranked r
        join since s on s.service_id = r.service_id
        join services v on v.id = r.service_id and v.removed = 0
        where r.rn = 1
        order by r.service_id;
CREATE VIEW "health_summary" AS with checks as (
        select * from health_checks 
    ), answered as (
        select service_id, latency_ms,
               row_number() over (partition by service_id order by latency_ms) as rn,
               count(*) over (partition by service_id) as n
        from checks where status_code is not null and latency_ms is not null
    ), pct as (
        select service_id,
               min(case when rn * 100 >= n * 50 then latency_ms end) as p50_latency_ms,
               min(case when rn * 100 >= n * 95 then latency_ms end) as p95_latency_ms
        from answered group by service_id
    )
    select c.service_id,
           count(*) as checks,
           sum(c.state = 'passing') as passing,
           sum(c.state = 'warning') as warning,
           sum(c.state = 'critical') as critical,
           round(1.0 * sum(c.state != 'critical') / count(*), 4) as uptime,
           round(1.0 * sum(c.state = 'passing') / count(*), 4) as passing_share,
           p.p50_latency_ms, p.p95_latency_ms,
           min(c.checked_at) as first_checked, max(c.checked_at) as last_checked
    from checks c left join pct p on p.service_id = c.service_id
    group by c.service_id order by c.service_id;
CREATE VIEW "health_summary_24h" AS with checks as (
        select * from health_checks where checked_at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-1 day')
    ), answered as (
        select service_id, latency_ms,
               row_number() over (partition by service_id order by latency_ms) as rn,
               count(*) over (partition by service_id) as n
        from checks where status_code is not null and latency_ms is not null
    ), pct as (
        select service_id,
               min(case when rn * 100 >= n * 50 then latency_ms end) as p50_latency_ms,
               min(case when rn * 100 >= n * 95 then latency_ms end) as p95_latency_ms
        from answered group by service_id
    )
    select c.service_id,
           count(*) as checks,
           sum(c.state = 'passing') as passing,
           sum(c.state = 'warning') as warning,
           sum(c.state = 'critical') as critical,
           round(1.0 * sum(c.state != 'critical') / count(*), 4) as uptime,
           round(1.0 * sum(c.state = 'passing') / count(*), 4) as passing_share,
           p.p50_latency_ms, p.p95_latency_ms,
           min(c.checked_at) as first_checked, max(c.checked_at) as last_checked
    from checks c left join pct p on p.service_id = c.service_id
    group by c.service_id order by c.service_id;
CREATE TABLE registrations ([id] integer primary key, [service_id] text, [path] text, [commit_sha] text, [parent_sha] text, [status] text, [message] text, [author] text, [registered_at] text, [checked_at] text);
CREATE INDEX idx_registrations_status on registrations (status);
CREATE INDEX idx_registrations_service_id_id on registrations (service_id, id);
CREATE INDEX idx_registrations_commit_sha on registrations (commit_sha);
CREATE TABLE "rollbacks" (
   "id" INTEGER PRIMARY KEY,
   "attempted_at" TEXT,
   "actor_id" TEXT,
   "actor" TEXT,
   "via" TEXT,
   "service_id" TEXT,
   "target_commit" TEXT,
   "from_config" TEXT,
   "to_config" TEXT,
   "path" TEXT,
   "expected_head" TEXT,
   "head_before" TEXT,
   "new_commit" TEXT,
   "pushed" INTEGER,
   "outcome" TEXT,
   "message" TEXT
);
CREATE INDEX "idx_rollbacks_service_id_id"
    ON "rollbacks" ("service_id", "id");
CREATE TABLE "webhooks" (
   "id" INTEGER PRIMARY KEY,
   "name" TEXT,
   "url" TEXT,
   "kinds" TEXT,
   "secret" TEXT,
   "secret_env" TEXT,
   "active" INTEGER,
   "source" TEXT,
   "cursor" INTEGER,
   "created_at" TEXT,
   "updated_at" TEXT,
   "last_run_at" TEXT,
   "last_error" TEXT
);
CREATE UNIQUE INDEX "idx_webhooks_name"
    ON "webhooks" ("name");
CREATE TABLE "webhook_deliveries" (
   "id" INTEGER PRIMARY KEY,
   "webhook_id" INTEGER,
   "webhook" TEXT,
   "event_id" INTEGER,
   "event_kind" TEXT,
   "service_id" TEXT,
   "commit_sha" TEXT,
   "attempts" INTEGER,
   "status" TEXT,
   "status_code" INTEGER,
   "error" TEXT,
   "first_attempt_at" TEXT,
   "last_attempt_at" TEXT,
   "delivered_at" TEXT,
   "duration_ms" REAL
);
CREATE UNIQUE INDEX "idx_webhook_deliveries_webhook_id_event_id"
    ON "webhook_deliveries" ("webhook_id", "event_id");
CREATE INDEX "idx_webhook_deliveries_status"
    ON "webhook_deliveries" ("status");
