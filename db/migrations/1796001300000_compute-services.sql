-- Up Migration
-- The apps an image's sessions may start as services (name → {command, port, protocol,
-- url_path}, as the admin routes take them). NULL: never set, as every row made before this
-- column; the api's start-up fills the built-in image's with its defaults, an admin's own
-- setting (even {}) stays.
ALTER TABLE compute_images ADD COLUMN apps jsonb;

-- In-session services (jupyter, custom apps, the sshd of direct access), each reached through a
-- TCP listener on its node's loopback (host_port) that relays into the kernel's own loopback
-- (container_port). A node worker that starts again opens the listeners of its rows again.
-- The token is sealed with COMPUTE_SECRETS_KEY, bound to '<session id>/<name>'.
CREATE TABLE compute_services (
  session_id     uuid NOT NULL REFERENCES compute_sessions (id) ON DELETE CASCADE,
  name           text NOT NULL,
  kernel_id      uuid NOT NULL REFERENCES compute_kernels (id) ON DELETE CASCADE,
  node           text NOT NULL,
  protocol       text NOT NULL CHECK (protocol IN ('http', 'tcp')),
  url_path       text NOT NULL,
  requested_port integer NOT NULL CHECK (requested_port BETWEEN 1 AND 65535),
  container_port integer NOT NULL CHECK (container_port BETWEEN 1 AND 65535),
  host_port      integer NOT NULL CHECK (host_port BETWEEN 1 AND 65535),
  sealed_token   bytea NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, name),
  -- One listener per port on a node, one service per port in a kernel.
  UNIQUE (node, host_port),
  UNIQUE (kernel_id, container_port)
);

-- Down Migration
DROP TABLE compute_services;
ALTER TABLE compute_images DROP COLUMN apps;
