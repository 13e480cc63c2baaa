"""Line drivers behind one Line interface (see drivers.line), and the device emulators."""
