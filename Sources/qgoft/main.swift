import QGOFTCore
print("qgoft")
