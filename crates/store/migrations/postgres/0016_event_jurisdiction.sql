-- The subject's jurisdiction (a key of the catalogue's `jurisdictions`) from this event on, on an event
-- whose change set it. Hashed into the event only when present, so earlier events keep their hashes.
-- Current state keeps, per subject, the latest such event under the purpose '' (no catalogue key is empty)
-- and the scope 'jurisdiction', so the engine rebuilt at start learns it.
ALTER TABLE events ADD COLUMN jurisdiction TEXT;
