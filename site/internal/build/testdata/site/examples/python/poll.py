import time

# region loop
while not done():
    time.sleep(1)
# endregion loop
