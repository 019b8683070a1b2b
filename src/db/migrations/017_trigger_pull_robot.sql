-- Pull robots, as in Quay: a build may also pull what a robot account of the trigger can read, such as a
-- private base image. Only an administrator of the robot's namespace may name it. Deleting the robot
-- takes the grant away at once: the trigger and the tokens of builds under way lose it with it.
ALTER TABLE build_triggers
  ADD COLUMN pull_robot_id bigint REFERENCES accounts (id) ON DELETE SET NULL;

-- The robot a build ran with (namespace+name), as a record: kept when the robot is gone.
ALTER TABLE builds ADD COLUMN pull_robot text;

-- The robot whose read access the build's token also carries (pull only, never push or delete).
ALTER TABLE build_tokens
  ADD COLUMN pull_robot_id bigint REFERENCES accounts (id) ON DELETE SET NULL;
