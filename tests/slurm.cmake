# slurm: jobs/train.sbatch on a private single-node Slurm cluster (started and stopped by
# the test; needs root and apt): a 2-rank run, a requeued run and a preempted run, whose
# final lenses must be bitwise identical. TLENS_SKIP_SLURM=1 turns "cannot run here" into
# a skip (exit 77) instead of a failure. Serial: the jobs need every CPU of the machine.
tlens_sh_test(test_slurm_jobs slurm/test_slurm_jobs.sh)
set_tests_properties(test_slurm_jobs PROPERTIES LABELS slurm RUN_SERIAL TRUE TIMEOUT 900 SKIP_RETURN_CODE 77)

# The job scripts' logic without Slurm (local-mpirun.sh restarts, train.sbatch signal
# forwarding as a plain script, eval.sbatch, bad settings).
tlens_sh_test(test_job_scripts slurm/test_job_scripts.sh)
set_tests_properties(test_job_scripts PROPERTIES LABELS jobs)
