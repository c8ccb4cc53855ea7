// Anchor translation unit for the shared precompiled torch header (see Dependencies.cmake).
