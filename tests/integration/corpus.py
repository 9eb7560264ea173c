"""A corpus of definitions made by real tools and libvirt's documented formats, for the
edit-in-place tests: guests from `virt-install --print-xml` covering the guide's chapters,
networks and pools as libvirt's format documentation writes them.

Placeholders: {P} the test's prefix, {IMG} its image directory, {NET} its managed network,
{BR} a host bridge it made, {SUB} a /16 of its own ("10.x" without the last two octets)."""
from __future__ import annotations

# (name, virt-install arguments besides --name; {disk} is a fresh qcow2 image unless the
# arguments say otherwise)
GUESTS = [
    ("uefi", "--boot uefi --disk {disk}"),
    ("secboot", "--machine q35 --boot uefi,firmware.feature0.name=secure-boot,firmware.feature0.enabled=yes,"
                "firmware.feature1.name=enrolled-keys,firmware.feature1.enabled=yes --features smm.state=on --disk {disk}"),
    ("tpm", "--machine q35 --tpm emulator,model=tpm-crb,version=2.0 --disk {disk}"),
    ("tpmtis", "--tpm emulator,model=tpm-tis,version=1.2 --disk {disk}"),
    ("spice", "--graphics spice --video qxl --sound ich9 --channel spicevmc --disk {disk}"),
    ("vncpass", "--graphics vnc,password=s3cret,keymap=de,listen=0.0.0.0 --disk {disk}"),
    ("virtiofs", "--filesystem source={IMG},target=share,driver.type=virtiofs "
                 "--memorybacking source.type=memfd,access.mode=shared --disk {disk}"),
    ("ninep", "--filesystem source={IMG},target=tag9p --disk {disk}"),
    ("hostdev", "--hostdev pci_0000_00_03_0 --disk {disk}"),
    ("macvtap", "--network type=direct,source=eth0,source.mode=bridge,model=virtio --disk {disk}"),
    ("bridgenic", "--network bridge={BR},model=virtio --disk {disk}"),
    ("netnic", "--network network={NET},model=e1000e --disk {disk}"),
    ("multiq", "--network network={NET},model=virtio,driver.queues=4 --disk {disk}"),
    ("scsi", "--controller scsi,model=virtio-scsi --disk {disk},bus=scsi"),
    ("cache", "--disk {disk},cache=none,io=native,discard=unmap,detect_zeroes=unmap,serial=ABC123"),
    ("hyperv", "--osinfo win10 --disk {disk}"),
    ("kvmhidden", "--features kvm.hidden.state=on,pmu.state=off,vmport.state=off --disk {disk}"),
    ("numa", "--vcpus 2 --cpu Skylake-Client-noTSX-IBRS,+vmx,-hle,cell0.cpus=0,cell0.memory=131072,"
             "cell1.cpus=1,cell1.memory=131072 --disk {disk}"),
    ("hotplug", "--memory 256,maxMemory=1024,maxMemory.slots=4 --cpu host-model,cell0.cpus=0,cell0.memory=262144 "
                "--disk {disk}"),
    ("kernel", "--boot kernel={IMG}/vmlinuz,initrd={IMG}/initrd.img,kernel_args=console=ttyS0 --disk {disk}"),
    ("idefloppy", "--machine pc --disk {disk},bus=ide --disk {IMG}/floppy.img,device=floppy"),
    ("tcpserial", "--serial tcp,host=127.0.0.1:4555,mode=bind,protocol.type=telnet --disk {disk}"),
    ("watchdog", "--watchdog i6300esb,action=poweroff --disk {disk}"),
    ("rng", "--rng /dev/urandom --disk {disk}"),
    ("agent", "--channel unix,target.type=virtio,target.name=org.qemu.guest_agent.0 --disk {disk}"),
    ("cdrom", "--disk {disk} --disk {IMG}/media.iso,device=cdrom"),
    ("topology", "--cpu host-passthrough --vcpus 4,sockets=1,cores=2,threads=2 --disk {disk}"),
    ("pinning", "--vcpus 2 --cputune vcpupin0.vcpu=0,vcpupin0.cpuset=0,vcpupin1.vcpu=1,vcpupin1.cpuset=1 --disk {disk}"),
    ("hugepages", "--memorybacking hugepages=on --disk {disk}"),
    ("lifecycle", "--events on_poweroff=destroy,on_reboot=restart,on_crash=coredump-restart --panic isa --disk {disk}"),
    ("usb", "--controller usb,model=qemu-xhci --input tablet --graphics spice --redirdev usb,type=spicevmc --disk {disk}"),
    ("noballoon", "--memballoon none --video virtio --disk {disk}"),
    ("clock", "--clock offset=localtime,rtc_tickpolicy=catchup --disk {disk}"),
    ("iothreads", "--iothreads 2 --disk {disk},bus=virtio,driver.iothread=1"),
    ("tunes", "--memtune hard_limit=1048576 --blkiotune weight=500 --disk {disk}"),
    ("debian", "--osinfo debian11 --network network={NET} --disk {disk}"),
]

# (name, XML from libvirt's network format documentation, the harmless change: a manifest edit
# as (old, new), and the XML paths that change may touch)
NETWORKS = [
    ("dual", """<network><name>{P}-dual</name><forward mode='nat'/><bridge name='{P}d1' stp='on' delay='0'/>
      <ip address='{SUB}.1.1' netmask='255.255.255.0'><dhcp><range start='{SUB}.1.100' end='{SUB}.1.150'/></dhcp></ip>
      <ip family='ipv6' address='fd{H}:1::1' prefix='64'><dhcp><range start='fd{H}:1::100' end='fd{H}:1::1ff'/></dhcp></ip>
      </network>"""),
    ("dns", """<network><name>{P}-dns</name><forward mode='nat'><nat><port start='1024' end='65535'/></nat></forward>
      <bridge name='{P}d2'/><domain name='example.lan' localOnly='yes'/>
      <dns><txt name='example' value='example value'/><srv service='name' protocol='tcp' domain='test-domain-name'
      target='.' port='1024' priority='10' weight='10'/><host ip='{SUB}.2.9'><hostname>myhost</hostname>
      <hostname>myhostalias</hostname></host></dns><ip address='{SUB}.2.1' prefix='24'/></network>"""),
    ("route", """<network><name>{P}-route</name><forward mode='route'/><bridge name='{P}d3'/>
      <ip address='{SUB}.3.1' prefix='24'/><route address='{SUB}.33.0' prefix='24' gateway='{SUB}.3.2'/></network>"""),
    ("open", """<network><name>{P}-open</name><forward mode='open'/><bridge name='{P}d4'/>
      <ip address='{SUB}.4.1' prefix='24'/></network>"""),
    ("bootp", """<network><name>{P}-bootp</name><bridge name='{P}d5'/><ip address='{SUB}.5.1' prefix='24'><dhcp>
      <range start='{SUB}.5.100' end='{SUB}.5.150'/><host mac='00:16:3e:77:e2:ed' name='foo.example.com' ip='{SUB}.5.10'/>
      <bootp file='pxelinux.0' server='{SUB}.5.2'/></dhcp></ip></network>"""),
    ("portgroups", """<network><name>{P}-pg</name><forward mode='nat'/><bridge name='{P}d6'/>
      <portgroup name='engineering' default='yes'><bandwidth><inbound average='1000'/></bandwidth></portgroup>
      <portgroup name='sales'/><ip address='{SUB}.6.1' prefix='24'/></network>"""),
    ("hostbridge", """<network><name>{P}-hb</name><forward mode='bridge'/><bridge name='{BR}'/></network>"""),
    ("natrange", """<network><name>{P}-natr</name><forward mode='nat' dev='eth0'><nat><address start='{SUB}.7.10'
      end='{SUB}.7.20'/><port start='2000' end='3000'/></nat></forward><bridge name='{P}d7'/>
      <ip address='{SUB}.8.1' prefix='24'/></network>"""),
    ("ipv6only", """<network><name>{P}-v6</name><bridge name='{P}d9'/>
      <ip family='ipv6' address='fd{H}:9::1' prefix='64'/></network>"""),
    ("twoips", """<network><name>{P}-two</name><forward mode='nat'/><bridge name='{P}d10'/><mtu size='1400'/>
      <ip address='{SUB}.10.1' prefix='24'><dhcp><range start='{SUB}.10.50' end='{SUB}.10.60'/></dhcp></ip>
      <ip address='{SUB}.11.1' prefix='24'/></network>"""),
]

POOLS = [
    ("perms", """<pool type='dir'><name>{P}-perms</name><target><path>{IMG}/pool-perms</path>
      <permissions><mode>0711</mode><owner>0</owner><group>0</group></permissions></target></pool>"""),
    ("plain", """<pool type='dir'><name>{P}-plain</name><target><path>{IMG}/pool-plain</path></target></pool>"""),
    ("source", """<pool type='dir'><name>{P}-src</name><source/><target><path>{IMG}/pool-src</path></target></pool>"""),
    ("mode", """<pool type='dir'><name>{P}-mode</name><target><path>{IMG}/pool-mode/</path>
      <permissions><mode>0755</mode></permissions></target></pool>"""),
    ("uuid", """<pool type='dir'><name>{P}-uuid</name><uuid>{UUID}</uuid><target><path>{IMG}/pool-uuid</path>
      </target></pool>"""),
]
