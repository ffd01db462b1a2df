"""AutoScientist runs of the Adaption API: create (a job), read, list, cancel, download the best adapter."""
