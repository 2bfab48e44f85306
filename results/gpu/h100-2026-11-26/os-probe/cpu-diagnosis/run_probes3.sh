set -x
OMP_NUM_THREADS=1 timeout 600 python probe.py hynet_os_adam1e-2_e5 os hynet 5 128 0.01 1
OMP_NUM_THREADS=1 timeout 600 python probe.py hynet_os_adam5e-3_e5 os hynet 5 128 0.005 1
