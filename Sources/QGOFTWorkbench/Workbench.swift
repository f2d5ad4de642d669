import QGOFTCore
