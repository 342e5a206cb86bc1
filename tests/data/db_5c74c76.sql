-- made by tests/data/make_db_5c74c76.py with aureacore-db 0.1.0 (5c74c76)
BEGIN TRANSACTION;
CREATE TABLE "_sqlite_migrations" (
   "id" INTEGER PRIMARY KEY,
   "migration_set" TEXT,
   "name" TEXT,
   "applied_at" TEXT
);
INSERT INTO "_sqlite_migrations" VALUES(1,'aureacore-db','tables','2026-12-01 23:57:29.407446+00:00');
INSERT INTO "_sqlite_migrations" VALUES(2,'aureacore-db','webhook_secrets','2026-12-01 23:57:29.407771+00:00');
INSERT INTO "_sqlite_migrations" VALUES(3,'aureacore-db','read_indexes','2026-12-01 23:57:29.457772+00:00');
INSERT INTO "_sqlite_migrations" VALUES(4,'aureacore-db','git_hook_deliveries','2026-12-01 23:57:29.458294+00:00');
INSERT INTO "_sqlite_migrations" VALUES(5,'aureacore-db','events_autoincrement','2026-12-01 23:57:29.458512+00:00');
INSERT INTO "_sqlite_migrations" VALUES(6,'aureacore-db','views_cross_join','2026-12-01 23:57:29.458968+00:00');
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
INSERT INTO "commits" VALUES('d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,1,'[]','Test Author','author@example.com','2025-01-01T00:00:01Z','Test Author','author@example.com','2025-01-01T00:00:01Z','two services
',2);
INSERT INTO "commits" VALUES('9c2db0197917383254df3815fb3d3236e7661b58',2,1,'["d42ba3294d59a2883e6ad8a42d5e89ae15323aa6"]','Test Author','author@example.com','2025-01-01T00:00:02Z','Test Author','author@example.com','2025-01-01T00:00:02Z','users 1.1.0
',1);
INSERT INTO "commits" VALUES('9b04e5550463b7d3200b38c27507ca678a8a5684',3,1,'["9c2db0197917383254df3815fb3d3236e7661b58"]','Test Author','author@example.com','2025-01-01T00:00:04Z','Test Author','author@example.com','2025-01-01T00:00:04Z','users 1.2.0
',1);
INSERT INTO "commits" VALUES('64ef20884552f0602dc8ee1334d7e0d6b5462f48',4,0,'["9c2db0197917383254df3815fb3d3236e7661b58"]','Test Author','author@example.com','2025-01-01T00:00:03Z','Test Author','author@example.com','2025-01-01T00:00:03Z','auth 1.1.0 on a side branch
',1);
INSERT INTO "commits" VALUES('27b96840b20951646d799d2496d01525ca0acea1',5,1,'["9b04e5550463b7d3200b38c27507ca678a8a5684", "64ef20884552f0602dc8ee1334d7e0d6b5462f48"]','Test Author','author@example.com','2025-01-01T00:00:05Z','Test Author','author@example.com','2025-01-01T00:00:05Z','Merge branch ''side''
',1);
INSERT INTO "commits" VALUES('1f539f768dbca8ad908c1f61941ed85fd473a8fd',6,1,'["27b96840b20951646d799d2496d01525ca0acea1"]','Ann Admin','ann@example.com','2026-12-01T23:57:30Z','Ann Admin','ann@example.com','2026-12-01T23:57:30Z','Roll back platform/users to d42ba32

Restores services/platform/users.yaml as of d42ba3294d59a2883e6ad8a42d5e89ae15323aa6 (config 9fd2774).

Rolled-back-by: Ann Admin <ann@example.com>
',1);
INSERT INTO "commits" VALUES('dc6c103185865962fb38a9c3005ca7b2f1d7a17e',7,1,'["1f539f768dbca8ad908c1f61941ed85fd473a8fd"]','Ann Admin','ann@example.com','2026-12-01T23:57:31Z','Seed b8c53d2b maintainers','maintainers@users.noreply.r-seed-b8c53d2b.example','2026-12-01T23:57:31Z','Register payments/billing',1);
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
INSERT INTO "configs" VALUES('e32d81555a993eab9ec03dd16be568f6c694dd12','platform/auth','services/platform/auth.yaml','yaml',98,'name: auth
namespace: platform
version: 1.0.0
health_check:
  url: http://127.0.0.1:41261/healthz
','{"name": "auth", "namespace": "platform", "version": "1.0.0", "health_check": {"url": "http://127.0.0.1:41261/healthz"}}','1.0.0','1.0.0',NULL,NULL,NULL,NULL,NULL,'[]');
INSERT INTO "configs" VALUES('9fd2774d7eb6d23594c6974642e5f0c713332b84','platform/users','services/platform/users.yaml','yaml',47,'name: users
namespace: platform
version: 1.0.0
','{"name": "users", "namespace": "platform", "version": "1.0.0"}','1.0.0','1.0.0',NULL,NULL,NULL,NULL,NULL,'[]');
INSERT INTO "configs" VALUES('d0151eec4876a8bba08bcd86d0f529655d9fcd2a','platform/users','services/platform/users.yaml','yaml',47,'name: users
namespace: platform
version: 1.1.0
','{"name": "users", "namespace": "platform", "version": "1.1.0"}','1.1.0','1.0.0',NULL,NULL,NULL,NULL,NULL,'[]');
INSERT INTO "configs" VALUES('8c881ba29de5209a7937f6844d9ebe0bedb7a8dc','platform/users','services/platform/users.yaml','yaml',47,'name: users
namespace: platform
version: 1.2.0
','{"name": "users", "namespace": "platform", "version": "1.2.0"}','1.2.0','1.0.0',NULL,NULL,NULL,NULL,NULL,'[]');
INSERT INTO "configs" VALUES('0debe1d14c0ed9578d5fbf7c6cc4a7a1290adcf4','platform/auth','services/platform/auth.yaml','yaml',98,'name: auth
namespace: platform
version: 1.1.0
health_check:
  url: http://127.0.0.1:41261/healthz
','{"name": "auth", "namespace": "platform", "version": "1.1.0", "health_check": {"url": "http://127.0.0.1:41261/healthz"}}','1.1.0','1.0.0',NULL,NULL,NULL,NULL,NULL,'[]');
INSERT INTO "configs" VALUES('42b03221d97e0e2f4e0c025a2e4a930185c56ac8','payments/billing','services/payments/billing.yaml','yaml',49,'name: billing
namespace: payments
version: 0.1.0
','{"name": "billing", "namespace": "payments", "version": "0.1.0"}','0.1.0','1.0.0',NULL,NULL,NULL,NULL,NULL,'[]');
CREATE TABLE "services" (
   "id" TEXT PRIMARY KEY,
   "namespace" TEXT,
   "name" TEXT,
   "path" TEXT,
   "config_id" TEXT REFERENCES "configs"("id"),
   "version" TEXT,
   "status" TEXT,
   "status_message" TEXT,
   "removed" INTEGER,
   "owner" TEXT,
   "description" TEXT,
   "error_count" INTEGER,
   "warning_count" INTEGER,
   "first_commit" TEXT REFERENCES "commits"("sha"),
   "last_commit" TEXT REFERENCES "commits"("sha"),
   "last_updated" TEXT
);
INSERT INTO "services" VALUES('platform/auth','platform','auth','services/platform/auth.yaml','0debe1d14c0ed9578d5fbf7c6cc4a7a1290adcf4','1.1.0','CONFIGURED','',0,NULL,NULL,0,0,'d42ba3294d59a2883e6ad8a42d5e89ae15323aa6','27b96840b20951646d799d2496d01525ca0acea1','2025-01-01T00:00:05Z');
INSERT INTO "services" VALUES('platform/users','platform','users','services/platform/users.yaml','9fd2774d7eb6d23594c6974642e5f0c713332b84','1.0.0','CONFIGURED','',0,NULL,NULL,0,0,'d42ba3294d59a2883e6ad8a42d5e89ae15323aa6','1f539f768dbca8ad908c1f61941ed85fd473a8fd','2026-12-01T23:57:30Z');
INSERT INTO "services" VALUES('payments/billing','payments','billing','services/payments/billing.yaml','42b03221d97e0e2f4e0c025a2e4a930185c56ac8','0.1.0','CONFIGURED','',0,NULL,NULL,0,0,'dc6c103185865962fb38a9c3005ca7b2f1d7a17e','dc6c103185865962fb38a9c3005ca7b2f1d7a17e','2026-12-01T23:57:31Z');
CREATE TABLE "history" (
   "id" INTEGER PRIMARY KEY,
   "service_id" TEXT REFERENCES "services"("id"),
   "commit_sha" TEXT REFERENCES "commits"("sha"),
   "seq" INTEGER,
   "mainline" INTEGER,
   "change" TEXT,
   "path" TEXT,
   "old_path" TEXT,
   "config_id" TEXT REFERENCES "configs"("id"),
   "previous_config_id" TEXT REFERENCES "configs"("id"),
   "status" TEXT,
   "committed_at" TEXT,
   "author_name" TEXT,
   "author_email" TEXT
);
INSERT INTO "history" VALUES(1,'platform/auth','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,1,'added','services/platform/auth.yaml',NULL,'e32d81555a993eab9ec03dd16be568f6c694dd12',NULL,'CONFIGURED','2025-01-01T00:00:01Z','Test Author','author@example.com');
INSERT INTO "history" VALUES(2,'platform/users','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,1,'added','services/platform/users.yaml',NULL,'9fd2774d7eb6d23594c6974642e5f0c713332b84',NULL,'CONFIGURED','2025-01-01T00:00:01Z','Test Author','author@example.com');
INSERT INTO "history" VALUES(3,'platform/users','9c2db0197917383254df3815fb3d3236e7661b58',2,1,'modified','services/platform/users.yaml',NULL,'d0151eec4876a8bba08bcd86d0f529655d9fcd2a','9fd2774d7eb6d23594c6974642e5f0c713332b84','CONFIGURED','2025-01-01T00:00:02Z','Test Author','author@example.com');
INSERT INTO "history" VALUES(4,'platform/users','9b04e5550463b7d3200b38c27507ca678a8a5684',3,1,'modified','services/platform/users.yaml',NULL,'8c881ba29de5209a7937f6844d9ebe0bedb7a8dc','d0151eec4876a8bba08bcd86d0f529655d9fcd2a','CONFIGURED','2025-01-01T00:00:04Z','Test Author','author@example.com');
INSERT INTO "history" VALUES(5,'platform/auth','64ef20884552f0602dc8ee1334d7e0d6b5462f48',4,0,'modified','services/platform/auth.yaml',NULL,'0debe1d14c0ed9578d5fbf7c6cc4a7a1290adcf4','e32d81555a993eab9ec03dd16be568f6c694dd12','CONFIGURED','2025-01-01T00:00:03Z','Test Author','author@example.com');
INSERT INTO "history" VALUES(6,'platform/auth','27b96840b20951646d799d2496d01525ca0acea1',5,1,'modified','services/platform/auth.yaml',NULL,'0debe1d14c0ed9578d5fbf7c6cc4a7a1290adcf4','e32d81555a993eab9ec03dd16be568f6c694dd12','CONFIGURED','2025-01-01T00:00:05Z','Test Author','author@example.com');
INSERT INTO "history" VALUES(7,'platform/users','1f539f768dbca8ad908c1f61941ed85fd473a8fd',6,1,'modified','services/platform/users.yaml',NULL,'9fd2774d7eb6d23594c6974642e5f0c713332b84','8c881ba29de5209a7937f6844d9ebe0bedb7a8dc','CONFIGURED','2026-12-01T23:57:30Z','Ann Admin','ann@example.com');
INSERT INTO "history" VALUES(8,'payments/billing','dc6c103185865962fb38a9c3005ca7b2f1d7a17e',7,1,'added','services/payments/billing.yaml',NULL,'42b03221d97e0e2f4e0c025a2e4a930185c56ac8',NULL,'CONFIGURED','2026-12-01T23:57:31Z','Ann Admin','ann@example.com');
CREATE TABLE "status" (
   "id" INTEGER PRIMARY KEY,
   "service_id" TEXT REFERENCES "services"("id"),
   "commit_sha" TEXT REFERENCES "commits"("sha"),
   "seq" INTEGER,
   "mainline" INTEGER,
   "status" TEXT,
   "previous_status" TEXT,
   "message" TEXT,
   "checked_at" TEXT
);
INSERT INTO "status" VALUES(1,'platform/auth','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,1,'CONFIGURED',NULL,'','2025-01-01T00:00:01Z');
INSERT INTO "status" VALUES(2,'platform/users','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,1,'CONFIGURED',NULL,'','2025-01-01T00:00:01Z');
INSERT INTO "status" VALUES(3,'payments/billing','dc6c103185865962fb38a9c3005ca7b2f1d7a17e',7,1,'CONFIGURED',NULL,'','2026-12-01T23:57:31Z');
CREATE TABLE "validation_errors" (
   "id" INTEGER PRIMARY KEY,
   "status_id" INTEGER REFERENCES "status"("id"),
   "service_id" TEXT REFERENCES "services"("id"),
   "commit_sha" TEXT REFERENCES "commits"("sha"),
   "seq" INTEGER,
   "mainline" INTEGER,
   "config_id" TEXT REFERENCES "configs"("id"),
   "severity" TEXT,
   "kind" TEXT,
   "json_path" TEXT,
   "message" TEXT,
   "schema" TEXT
);
CREATE TABLE "parameter_changes" (
   "id" INTEGER PRIMARY KEY,
   "history_id" INTEGER REFERENCES "history"("id"),
   "service_id" TEXT REFERENCES "services"("id"),
   "commit_sha" TEXT REFERENCES "commits"("sha"),
   "seq" INTEGER,
   "mainline" INTEGER,
   "key" TEXT,
   "old_value" TEXT,
   "new_value" TEXT,
   "change" TEXT,
   "committed_at" TEXT,
   "author_name" TEXT
);
INSERT INTO "parameter_changes" VALUES(1,1,'platform/auth','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,1,'$.health_check.url',NULL,'"http://127.0.0.1:41261/healthz"','added','2025-01-01T00:00:01Z','Test Author');
INSERT INTO "parameter_changes" VALUES(2,1,'platform/auth','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,1,'$.name',NULL,'"auth"','added','2025-01-01T00:00:01Z','Test Author');
INSERT INTO "parameter_changes" VALUES(3,1,'platform/auth','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,1,'$.namespace',NULL,'"platform"','added','2025-01-01T00:00:01Z','Test Author');
INSERT INTO "parameter_changes" VALUES(4,1,'platform/auth','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,1,'$.version',NULL,'"1.0.0"','added','2025-01-01T00:00:01Z','Test Author');
INSERT INTO "parameter_changes" VALUES(5,2,'platform/users','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,1,'$.name',NULL,'"users"','added','2025-01-01T00:00:01Z','Test Author');
INSERT INTO "parameter_changes" VALUES(6,2,'platform/users','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,1,'$.namespace',NULL,'"platform"','added','2025-01-01T00:00:01Z','Test Author');
INSERT INTO "parameter_changes" VALUES(7,2,'platform/users','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,1,'$.version',NULL,'"1.0.0"','added','2025-01-01T00:00:01Z','Test Author');
INSERT INTO "parameter_changes" VALUES(8,3,'platform/users','9c2db0197917383254df3815fb3d3236e7661b58',2,1,'$.version','"1.0.0"','"1.1.0"','changed','2025-01-01T00:00:02Z','Test Author');
INSERT INTO "parameter_changes" VALUES(9,4,'platform/users','9b04e5550463b7d3200b38c27507ca678a8a5684',3,1,'$.version','"1.1.0"','"1.2.0"','changed','2025-01-01T00:00:04Z','Test Author');
INSERT INTO "parameter_changes" VALUES(10,5,'platform/auth','64ef20884552f0602dc8ee1334d7e0d6b5462f48',4,0,'$.version','"1.0.0"','"1.1.0"','changed','2025-01-01T00:00:03Z','Test Author');
INSERT INTO "parameter_changes" VALUES(11,6,'platform/auth','27b96840b20951646d799d2496d01525ca0acea1',5,1,'$.version','"1.0.0"','"1.1.0"','changed','2025-01-01T00:00:05Z','Test Author');
INSERT INTO "parameter_changes" VALUES(12,7,'platform/users','1f539f768dbca8ad908c1f61941ed85fd473a8fd',6,1,'$.version','"1.2.0"','"1.0.0"','changed','2026-12-01T23:57:30Z','Ann Admin');
INSERT INTO "parameter_changes" VALUES(13,8,'payments/billing','dc6c103185865962fb38a9c3005ca7b2f1d7a17e',7,1,'$.name',NULL,'"billing"','added','2026-12-01T23:57:31Z','Ann Admin');
INSERT INTO "parameter_changes" VALUES(14,8,'payments/billing','dc6c103185865962fb38a9c3005ca7b2f1d7a17e',7,1,'$.namespace',NULL,'"payments"','added','2026-12-01T23:57:31Z','Ann Admin');
INSERT INTO "parameter_changes" VALUES(15,8,'payments/billing','dc6c103185865962fb38a9c3005ca7b2f1d7a17e',7,1,'$.version',NULL,'"0.1.0"','added','2026-12-01T23:57:31Z','Ann Admin');
CREATE TABLE "dependencies" (
   "config_id" TEXT REFERENCES "configs"("id"),
   "service_id" TEXT REFERENCES "services"("id"),
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
INSERT INTO "ingest_runs" VALUES(1,'2026-12-01T23:57:29Z','2026-12-01T23:57:29Z','/tmp/tmp0wg05z1o/configs','main','27b96840b20951646d799d2496d01525ca0acea1',5,0,0,'ok',NULL,0.051);
INSERT INTO "ingest_runs" VALUES(2,'2026-12-01T23:57:30Z','2026-12-01T23:57:30Z','/tmp/tmp0wg05z1o/configs','main','27b96840b20951646d799d2496d01525ca0acea1',0,0,0,'ok',NULL,0.002);
INSERT INTO "ingest_runs" VALUES(3,'2026-12-01T23:57:30Z','2026-12-01T23:57:30Z','/tmp/tmp0wg05z1o/configs','main','1f539f768dbca8ad908c1f61941ed85fd473a8fd',1,0,0,'ok',NULL,0.004);
INSERT INTO "ingest_runs" VALUES(4,'2026-12-01T23:57:31Z','2026-12-01T23:57:31Z','/tmp/tmp0wg05z1o/configs','main','dc6c103185865962fb38a9c3005ca7b2f1d7a17e',1,0,0,'ok',NULL,0.004);
CREATE TABLE [events] ([id] INTEGER PRIMARY KEY AUTOINCREMENT, [kind] TEXT, [service_id] TEXT, [commit_sha] TEXT REFERENCES [commits]([sha]), [seq] INTEGER, [mainline] INTEGER, [occurred_at] TEXT, [payload] TEXT);
INSERT INTO "events" VALUES(1,'service_added','platform/auth','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,1,'2025-01-01T00:00:01Z','{"author": "Test Author", "change": "added", "config_id": "e32d81555a993eab9ec03dd16be568f6c694dd12", "old_path": null, "path": "services/platform/auth.yaml", "previous_config_id": null, "version": "1.0.0"}');
INSERT INTO "events" VALUES(2,'service_added','platform/users','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,1,'2025-01-01T00:00:01Z','{"author": "Test Author", "change": "added", "config_id": "9fd2774d7eb6d23594c6974642e5f0c713332b84", "old_path": null, "path": "services/platform/users.yaml", "previous_config_id": null, "version": "1.0.0"}');
INSERT INTO "events" VALUES(3,'status_changed','platform/auth','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,1,'2025-01-01T00:00:01Z','{"message": "", "previous_status": null, "status": "CONFIGURED"}');
INSERT INTO "events" VALUES(4,'status_changed','platform/users','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,1,'2025-01-01T00:00:01Z','{"message": "", "previous_status": null, "status": "CONFIGURED"}');
INSERT INTO "events" VALUES(5,'service_changed','platform/users','9c2db0197917383254df3815fb3d3236e7661b58',2,1,'2025-01-01T00:00:02Z','{"author": "Test Author", "change": "modified", "config_id": "d0151eec4876a8bba08bcd86d0f529655d9fcd2a", "old_path": "services/platform/users.yaml", "path": "services/platform/users.yaml", "previous_config_id": "9fd2774d7eb6d23594c6974642e5f0c713332b84", "version": "1.1.0"}');
INSERT INTO "events" VALUES(6,'service_changed','platform/users','9b04e5550463b7d3200b38c27507ca678a8a5684',3,1,'2025-01-01T00:00:04Z','{"author": "Test Author", "change": "modified", "config_id": "8c881ba29de5209a7937f6844d9ebe0bedb7a8dc", "old_path": "services/platform/users.yaml", "path": "services/platform/users.yaml", "previous_config_id": "d0151eec4876a8bba08bcd86d0f529655d9fcd2a", "version": "1.2.0"}');
INSERT INTO "events" VALUES(7,'service_changed','platform/auth','64ef20884552f0602dc8ee1334d7e0d6b5462f48',4,0,'2025-01-01T00:00:03Z','{"author": "Test Author", "change": "modified", "config_id": "0debe1d14c0ed9578d5fbf7c6cc4a7a1290adcf4", "old_path": "services/platform/auth.yaml", "path": "services/platform/auth.yaml", "previous_config_id": "e32d81555a993eab9ec03dd16be568f6c694dd12", "version": "1.1.0"}');
INSERT INTO "events" VALUES(8,'service_changed','platform/auth','27b96840b20951646d799d2496d01525ca0acea1',5,1,'2025-01-01T00:00:05Z','{"author": "Test Author", "change": "modified", "config_id": "0debe1d14c0ed9578d5fbf7c6cc4a7a1290adcf4", "old_path": "services/platform/auth.yaml", "path": "services/platform/auth.yaml", "previous_config_id": "e32d81555a993eab9ec03dd16be568f6c694dd12", "version": "1.1.0"}');
INSERT INTO "events" VALUES(9,'service_changed','platform/users','1f539f768dbca8ad908c1f61941ed85fd473a8fd',6,1,'2026-12-01T23:57:30Z','{"author": "Ann Admin", "change": "modified", "config_id": "9fd2774d7eb6d23594c6974642e5f0c713332b84", "old_path": "services/platform/users.yaml", "path": "services/platform/users.yaml", "previous_config_id": "8c881ba29de5209a7937f6844d9ebe0bedb7a8dc", "version": "1.0.0"}');
INSERT INTO "events" VALUES(10,'rollback','platform/users','1f539f768dbca8ad908c1f61941ed85fd473a8fd',6,1,'2026-12-01T23:57:30Z','{"actor": "Ann Admin <ann@example.com>", "from_config": "8c881ba29de5209a7937f6844d9ebe0bedb7a8dc", "path": "services/platform/users.yaml", "pushed": false, "rollback_id": 1, "target_commit": "d42ba3294d59a2883e6ad8a42d5e89ae15323aa6", "to_config": "9fd2774d7eb6d23594c6974642e5f0c713332b84", "via": "cli"}');
INSERT INTO "events" VALUES(11,'service_added','payments/billing','dc6c103185865962fb38a9c3005ca7b2f1d7a17e',7,1,'2026-12-01T23:57:31Z','{"author": "Ann Admin", "change": "added", "config_id": "42b03221d97e0e2f4e0c025a2e4a930185c56ac8", "old_path": null, "path": "services/payments/billing.yaml", "previous_config_id": null, "version": "0.1.0"}');
INSERT INTO "events" VALUES(12,'status_changed','payments/billing','dc6c103185865962fb38a9c3005ca7b2f1d7a17e',7,1,'2026-12-01T23:57:31Z','{"message": "", "previous_status": null, "status": "CONFIGURED"}');
INSERT INTO "events" VALUES(13,'health_changed','platform/auth',NULL,NULL,NULL,'2026-12-01T23:57:32.902Z','{"error": null, "latency_ms": 27.1, "previous_state": null, "state": "passing", "status_code": 200, "url": "http://127.0.0.1:41261/healthz"}');
CREATE TABLE "aureacore_meta" (
   "key" TEXT PRIMARY KEY,
   "value" TEXT
);
INSERT INTO "aureacore_meta" VALUES('source','/tmp/tmp0wg05z1o/configs');
INSERT INTO "aureacore_meta" VALUES('repo_path','/tmp/tmp0wg05z1o/configs');
INSERT INTO "aureacore_meta" VALUES('branch','main');
INSERT INTO "aureacore_meta" VALUES('tool_version','0.1.0');
INSERT INTO "aureacore_meta" VALUES('shallow_points','');
INSERT INTO "aureacore_meta" VALUES('tip','dc6c103185865962fb38a9c3005ca7b2f1d7a17e');
INSERT INTO "aureacore_meta" VALUES('complete_tip','dc6c103185865962fb38a9c3005ca7b2f1d7a17e');
INSERT INTO "aureacore_meta" VALUES('complete_count','7');
CREATE TABLE "registrations" (
   "id" INTEGER PRIMARY KEY,
   "service_id" TEXT,
   "path" TEXT,
   "commit_sha" TEXT,
   "parent_sha" TEXT,
   "status" TEXT,
   "message" TEXT,
   "author" TEXT,
   "registered_at" TEXT,
   "checked_at" TEXT
);
INSERT INTO "registrations" VALUES(1,'payments/billing','services/payments/billing.yaml','dc6c103185865962fb38a9c3005ca7b2f1d7a17e','1f539f768dbca8ad908c1f61941ed85fd473a8fd','CONFIGURED','','Ann Admin <ann@example.com>','2026-12-01T23:57:31Z','2026-12-01T23:57:31Z');
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
INSERT INTO "rollbacks" VALUES(1,'2026-12-01T23:57:30Z','Ann Admin <ann@example.com>','{"email": "ann@example.com", "id": "Ann Admin <ann@example.com>", "name": "Ann Admin"}','cli','platform/users','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6','8c881ba29de5209a7937f6844d9ebe0bedb7a8dc','9fd2774d7eb6d23594c6974642e5f0c713332b84','services/platform/users.yaml','27b96840b20951646d799d2496d01525ca0acea1','27b96840b20951646d799d2496d01525ca0acea1','1f539f768dbca8ad908c1f61941ed85fd473a8fd',0,'ok','rolled back platform/users to d42ba32 as commit 1f539f7');
CREATE TABLE "webhooks" (
   "id" INTEGER PRIMARY KEY,
   "name" TEXT,
   "url" TEXT,
   "kinds" TEXT,
   "secret_env" TEXT,
   "active" INTEGER,
   "source" TEXT,
   "cursor" INTEGER,
   "created_at" TEXT,
   "updated_at" TEXT,
   "last_run_at" TEXT,
   "last_error" TEXT
);
INSERT INTO "webhooks" VALUES(1,'ops','http://127.0.0.1:41261/hook',NULL,NULL,1,'db',12,'2026-12-01T23:57:30.085Z','2026-12-01T23:57:30.085Z','2026-12-01T23:57:32.145Z',NULL);
CREATE TABLE "webhook_secrets" (
   "webhook_id" INTEGER PRIMARY KEY,
   "secret" TEXT,
   "url" TEXT
);
INSERT INTO "webhook_secrets" VALUES(1,'s3cret',NULL);
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
INSERT INTO "webhook_deliveries" VALUES(1,1,'ops',1,'service_added','platform/auth','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,'delivered',200,NULL,'2026-12-01T23:57:32.068Z','2026-12-01T23:57:32.096Z','2026-12-01T23:57:32.096Z',27.7);
INSERT INTO "webhook_deliveries" VALUES(2,1,'ops',2,'service_added','platform/users','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,'delivered',200,NULL,'2026-12-01T23:57:32.098Z','2026-12-01T23:57:32.106Z','2026-12-01T23:57:32.106Z',8.1);
INSERT INTO "webhook_deliveries" VALUES(3,1,'ops',3,'status_changed','platform/auth','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,'delivered',200,NULL,'2026-12-01T23:57:32.107Z','2026-12-01T23:57:32.110Z','2026-12-01T23:57:32.110Z',3.0);
INSERT INTO "webhook_deliveries" VALUES(4,1,'ops',4,'status_changed','platform/users','d42ba3294d59a2883e6ad8a42d5e89ae15323aa6',1,'delivered',200,NULL,'2026-12-01T23:57:32.110Z','2026-12-01T23:57:32.113Z','2026-12-01T23:57:32.113Z',2.7);
INSERT INTO "webhook_deliveries" VALUES(5,1,'ops',5,'service_changed','platform/users','9c2db0197917383254df3815fb3d3236e7661b58',1,'delivered',200,NULL,'2026-12-01T23:57:32.114Z','2026-12-01T23:57:32.117Z','2026-12-01T23:57:32.117Z',3.3);
INSERT INTO "webhook_deliveries" VALUES(6,1,'ops',6,'service_changed','platform/users','9b04e5550463b7d3200b38c27507ca678a8a5684',1,'delivered',200,NULL,'2026-12-01T23:57:32.118Z','2026-12-01T23:57:32.121Z','2026-12-01T23:57:32.121Z',3.3);
INSERT INTO "webhook_deliveries" VALUES(7,1,'ops',7,'service_changed','platform/auth','64ef20884552f0602dc8ee1334d7e0d6b5462f48',1,'delivered',200,NULL,'2026-12-01T23:57:32.122Z','2026-12-01T23:57:32.126Z','2026-12-01T23:57:32.126Z',3.5);
INSERT INTO "webhook_deliveries" VALUES(8,1,'ops',8,'service_changed','platform/auth','27b96840b20951646d799d2496d01525ca0acea1',1,'delivered',200,NULL,'2026-12-01T23:57:32.126Z','2026-12-01T23:57:32.129Z','2026-12-01T23:57:32.129Z',3.0);
INSERT INTO "webhook_deliveries" VALUES(9,1,'ops',9,'service_changed','platform/users','1f539f768dbca8ad908c1f61941ed85fd473a8fd',1,'delivered',200,NULL,'2026-12-01T23:57:32.130Z','2026-12-01T23:57:32.133Z','2026-12-01T23:57:32.133Z',3.3);
INSERT INTO "webhook_deliveries" VALUES(10,1,'ops',10,'rollback','platform/users','1f539f768dbca8ad908c1f61941ed85fd473a8fd',1,'delivered',200,NULL,'2026-12-01T23:57:32.134Z','2026-12-01T23:57:32.137Z','2026-12-01T23:57:32.137Z',3.2);
INSERT INTO "webhook_deliveries" VALUES(11,1,'ops',11,'service_added','payments/billing','dc6c103185865962fb38a9c3005ca7b2f1d7a17e',1,'delivered',200,NULL,'2026-12-01T23:57:32.138Z','2026-12-01T23:57:32.141Z','2026-12-01T23:57:32.141Z',3.6);
INSERT INTO "webhook_deliveries" VALUES(12,1,'ops',12,'status_changed','payments/billing','dc6c103185865962fb38a9c3005ca7b2f1d7a17e',1,'delivered',200,NULL,'2026-12-01T23:57:32.142Z','2026-12-01T23:57:32.145Z','2026-12-01T23:57:32.145Z',3.2);
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
INSERT INTO "health_checks" VALUES(1,'platform/auth','http://127.0.0.1:41261/healthz','2026-12-01T23:57:32.902Z','passing',200,27.1,NULL);
CREATE TABLE "git_hook_deliveries" (
   "id" INTEGER PRIMARY KEY,
   "received_at" TEXT,
   "forge" TEXT,
   "event" TEXT,
   "delivery_id" TEXT,
   "ref" TEXT,
   "outcome" TEXT,
   "reason" TEXT,
   "sync_result" TEXT,
   "finished_at" TEXT
);
CREATE VIRTUAL TABLE "commits_fts" USING FTS5 (
    "message",
    content="commits"
);
CREATE VIRTUAL TABLE "configs_fts" USING FTS5 (
    "raw",
    content="configs"
);
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('events',13);
INSERT INTO "commits_fts"("commits_fts") VALUES('rebuild');
INSERT INTO "configs_fts"("configs_fts") VALUES('rebuild');
CREATE UNIQUE INDEX "idx__sqlite_migrations_migration_set_name"
    ON "_sqlite_migrations" ("migration_set", "name");
CREATE INDEX "idx_registrations_status"
    ON "registrations" ("status");
CREATE INDEX "idx_registrations_service_id_id"
    ON "registrations" ("service_id", "id");
CREATE INDEX "idx_registrations_commit_sha"
    ON "registrations" ("commit_sha");
CREATE INDEX "idx_rollbacks_service_id_id"
    ON "rollbacks" ("service_id", "id");
CREATE UNIQUE INDEX "idx_webhooks_name"
    ON "webhooks" ("name");
CREATE UNIQUE INDEX "idx_webhook_deliveries_webhook_id_event_id"
    ON "webhook_deliveries" ("webhook_id", "event_id");
CREATE INDEX "idx_webhook_deliveries_status"
    ON "webhook_deliveries" ("status");
CREATE INDEX "idx_health_checks_service_id_checked_at"
    ON "health_checks" ("service_id", "checked_at");
CREATE INDEX "idx_git_hook_deliveries_forge_delivery_id"
    ON "git_hook_deliveries" ("forge", "delivery_id");
CREATE INDEX "idx_history_service_id_seq"
    ON "history" ("service_id", "seq");
CREATE VIEW "current_services" AS select * from services where removed = 0 order by id;
CREATE VIEW "services_in_error" AS select id, namespace, name, path, version, status_message, last_commit, last_updated
        from services where removed = 0 and status = 'ERROR' order by id;
CREATE VIEW "current_dependencies" AS select s.id as service_id, d.depends_on, d.version_constraint, d.required,
               t.version as depends_on_version, t.status as depends_on_status,
               case when t.id is null or t.removed = 1 then 0 else 1 end as depends_on_exists
        from services s
        cross join dependencies d on d.config_id = s.config_id and d.service_id = s.id
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
CREATE INDEX "idx_history_commit_sha"
    ON "history" ("commit_sha");
CREATE INDEX "idx_history_mainline_seq"
    ON "history" ("mainline", "seq");
CREATE INDEX "idx_history_seq"
    ON "history" ("seq");
CREATE INDEX "idx_history_config_id"
    ON "history" ("config_id");
CREATE INDEX "idx_status_service_id_seq"
    ON "status" ("service_id", "seq");
CREATE INDEX "idx_status_commit_sha"
    ON "status" ("commit_sha");
CREATE INDEX "idx_status_seq"
    ON "status" ("seq");
CREATE INDEX "idx_validation_errors_service_id_seq"
    ON "validation_errors" ("service_id", "seq");
CREATE INDEX "idx_validation_errors_commit_sha"
    ON "validation_errors" ("commit_sha");
CREATE INDEX "idx_validation_errors_status_id"
    ON "validation_errors" ("status_id");
CREATE INDEX "idx_validation_errors_seq"
    ON "validation_errors" ("seq");
CREATE INDEX "idx_parameter_changes_service_id_key"
    ON "parameter_changes" ("service_id", "key");
CREATE INDEX "idx_parameter_changes_key"
    ON "parameter_changes" ("key");
CREATE INDEX "idx_parameter_changes_commit_sha"
    ON "parameter_changes" ("commit_sha");
CREATE INDEX "idx_parameter_changes_history_id"
    ON "parameter_changes" ("history_id");
CREATE INDEX "idx_parameter_changes_seq"
    ON "parameter_changes" ("seq");
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
CREATE INDEX "idx_configs_format"
    ON "configs" ("format");
CREATE INDEX "idx_configs_schema_version"
    ON "configs" ("schema_version");
CREATE INDEX "idx_history_change"
    ON "history" ("change");
CREATE TRIGGER "commits_ai" AFTER INSERT ON "commits" BEGIN
  INSERT INTO "commits_fts" (rowid, "message") VALUES (new.rowid, new."message");
END;
CREATE TRIGGER "commits_ad" AFTER DELETE ON "commits" BEGIN
  INSERT INTO "commits_fts" ("commits_fts", rowid, "message") VALUES('delete', old.rowid, old."message");
END;
CREATE TRIGGER "commits_au" AFTER UPDATE ON "commits" BEGIN
  INSERT INTO "commits_fts" ("commits_fts", rowid, "message") VALUES('delete', old.rowid, old."message");
  INSERT INTO "commits_fts" (rowid, "message") VALUES (new.rowid, new."message");
END;
CREATE TRIGGER "configs_ai" AFTER INSERT ON "configs" BEGIN
  INSERT INTO "configs_fts" (rowid, "raw") VALUES (new.rowid, new."raw");
END;
CREATE TRIGGER "configs_ad" AFTER DELETE ON "configs" BEGIN
  INSERT INTO "configs_fts" ("configs_fts", rowid, "raw") VALUES('delete', old.rowid, old."raw");
END;
CREATE TRIGGER "configs_au" AFTER UPDATE ON "configs" BEGIN
  INSERT INTO "configs_fts" ("configs_fts", rowid, "raw") VALUES('delete', old.rowid, old."raw");
  INSERT INTO "configs_fts" (rowid, "raw") VALUES (new.rowid, new."raw");
END;
COMMIT;
