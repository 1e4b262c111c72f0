package nic

import "golang.org/x/sys/unix"

// IndexIn is the index of interface name in the network namespace of
// socket fd (SIOCGIFINDEX on the socket): what joining a multicast group
// or binding a packet socket needs, asked of the socket's own namespace,
// not the caller's (a test host, the kernel lab's VLAN scenario).
func IndexIn(fd int, name string) (int, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, err
	}
	return int(ifr.Uint32()), nil
}
