# Read by cpack: a .deb must be built from a tree configured with the prefix
# /usr (the unit and the config path are fixed at configure time).
if(CPACK_GENERATOR STREQUAL "DEB" AND NOT CPACK_PACKAGING_INSTALL_PREFIX STREQUAL "/usr")
  message(FATAL_ERROR "alcove: build the .deb with packaging/build-deb (CMAKE_INSTALL_PREFIX=/usr), "
    "not from a tree configured with ${CPACK_PACKAGING_INSTALL_PREFIX}")
endif()
