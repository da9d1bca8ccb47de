-- Up Migration
-- Compute sessions (seed 000): reference data the admin api keeps, and the read model the
-- session workflows write through their activities.

CREATE TABLE compute_scaling_groups (
  name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
  description text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO compute_scaling_groups (name, description) VALUES ('default', 'every node that names no other group');

-- A node is a Docker engine with a worker polling task_queue; capacity is what it declares
-- (accounting only where no GPU exists); the scheduler places kernels on live nodes only.
CREATE TABLE compute_nodes (
  name              text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
  scaling_group     text NOT NULL REFERENCES compute_scaling_groups (name),
  task_queue        text NOT NULL,
  cpu_millis        integer NOT NULL CHECK (cpu_millis > 0),
  memory_bytes      bigint NOT NULL CHECK (memory_bytes > 0),
  gpu               numeric(8, 2) NOT NULL DEFAULT 0 CHECK (gpu >= 0),
  schedulable       boolean NOT NULL DEFAULT true,
  registered_at     timestamptz NOT NULL DEFAULT now(),
  last_heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- name:tag as users write it, the reference a node pulls, and the resources a session of it gets by default.
CREATE TABLE compute_images (
  name         text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._/-]{0,127}:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$'),
  reference    text NOT NULL,
  cpu_millis   integer NOT NULL DEFAULT 1000 CHECK (cpu_millis > 0),
  memory_bytes bigint NOT NULL DEFAULT 268435456 CHECK (memory_bytes > 0),
  gpu          numeric(8, 2) NOT NULL DEFAULT 0 CHECK (gpu >= 0),
  created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE compute_templates (
  id         text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
  params     jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- A user without a row has the configured default policy.
CREATE TABLE compute_resource_policies (
  user_id      uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  max_sessions integer NOT NULL CHECK (max_sessions >= 0),
  cpu_millis   integer NOT NULL CHECK (cpu_millis >= 0),
  memory_bytes bigint NOT NULL CHECK (memory_bytes >= 0),
  gpu          numeric(8, 2) NOT NULL CHECK (gpu >= 0),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Named volumes a user owns, mounted under /home/work/<name>.
CREATE TABLE compute_vfolders (
  owner_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name       text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
  volume     text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (owner_id, name)
);

-- secret_env, sealed (AES-256-GCM, the secret's id bound in): workflows and labels carry only the id.
CREATE TABLE compute_secrets (
  id         uuid PRIMARY KEY,
  owner_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  sealed     bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE compute_sessions (
  id            uuid PRIMARY KEY,
  owner_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name          text NOT NULL,
  status        text NOT NULL,
  status_reason text,
  image         text NOT NULL,
  scaling_group text NOT NULL,
  cluster_mode  text NOT NULL CHECK (cluster_mode IN ('single-node', 'multi-node')),
  cluster_size  integer NOT NULL CHECK (cluster_size BETWEEN 1 AND 64),
  -- Per kernel; the session holds cluster_size times this.
  cpu_millis    integer NOT NULL,
  memory_bytes  bigint NOT NULL,
  gpu           numeric(8, 2) NOT NULL,
  priority      integer NOT NULL DEFAULT 0,
  params        jsonb NOT NULL,
  secret_id     uuid REFERENCES compute_secrets (id) ON DELETE SET NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz,
  terminated_at timestamptz
);
-- A name is one user's among their live sessions; an ended session frees it.
CREATE UNIQUE INDEX compute_sessions_live_name ON compute_sessions (owner_id, name) WHERE status NOT IN ('TERMINATED', 'ERROR', 'CANCELLED');
CREATE INDEX compute_sessions_owner ON compute_sessions (owner_id, created_at DESC);
CREATE INDEX compute_sessions_live ON compute_sessions (status) WHERE status NOT IN ('TERMINATED', 'ERROR', 'CANCELLED');

CREATE TABLE compute_kernels (
  id           uuid PRIMARY KEY,
  session_id   uuid NOT NULL REFERENCES compute_sessions (id) ON DELETE CASCADE,
  role         text NOT NULL CHECK (role IN ('main', 'sub')),
  idx          integer NOT NULL,
  hostname     text NOT NULL,
  node         text REFERENCES compute_nodes (name),
  container_id text,
  status       text NOT NULL,
  cpu_millis   integer NOT NULL,
  memory_bytes bigint NOT NULL,
  gpu          numeric(8, 2) NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (session_id, hostname)
);
CREATE INDEX compute_kernels_node ON compute_kernels (node) WHERE node IS NOT NULL;

CREATE TABLE compute_status_history (
  session_id  uuid NOT NULL REFERENCES compute_sessions (id) ON DELETE CASCADE,
  seq         integer NOT NULL,
  from_status text,
  to_status   text NOT NULL,
  reason      text,
  at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, seq)
);

CREATE TABLE compute_session_dependencies (
  session_id uuid NOT NULL REFERENCES compute_sessions (id) ON DELETE CASCADE,
  depends_on uuid NOT NULL REFERENCES compute_sessions (id) ON DELETE CASCADE,
  PRIMARY KEY (session_id, depends_on),
  CHECK (session_id <> depends_on)
);
CREATE INDEX compute_session_dependencies_on ON compute_session_dependencies (depends_on);

-- Down Migration
DROP TABLE compute_session_dependencies;
DROP TABLE compute_status_history;
DROP TABLE compute_kernels;
DROP TABLE compute_sessions;
DROP TABLE compute_secrets;
DROP TABLE compute_vfolders;
DROP TABLE compute_resource_policies;
DROP TABLE compute_templates;
DROP TABLE compute_images;
DROP TABLE compute_nodes;
DROP TABLE compute_scaling_groups;
