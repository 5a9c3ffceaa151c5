; tkc kernel residualAdd
target triple = "nvptx64-nvidia-cuda"


define void @residualAdd(ptr addrspace(1) align 16 %a, ptr addrspace(1) align 16 %b, ptr addrspace(1) align 16 %y) {
entry:
  call void asm sideeffect "griddepcontrol.wait;", "~{memory}"()
  call void asm sideeffect "griddepcontrol.launch_dependents;", "~{memory}"()
  %t0 = call i32 @llvm.nvvm.read.ptx.sreg.ctaid.y()
  %t1 = call i32 @llvm.nvvm.read.ptx.sreg.ctaid.x()
  %t2 = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %t3 = mul i32 %t1, 128
  %t4 = add i32 %t3, %t2
  %t5 = icmp slt i32 %t4, 288
  br i1 %t5, label %then6, label %endif8
then6:
  %t9 = mul i32 %t0, 288
  %t10 = mul i32 %t1, 128
  %t11 = add i32 %t10, %t2
  %t12 = add i32 %t9, %t11
  %t13 = sext i32 %t12 to i64
  %p14 = getelementptr inbounds half, ptr addrspace(1) %a, i64 %t13
  %t15 = load half, ptr addrspace(1) %p14, align 2
  %t16 = fpext half %t15 to float
  %t17 = mul i32 %t0, 288
  %t18 = mul i32 %t1, 128
  %t19 = add i32 %t18, %t2
  %t20 = add i32 %t17, %t19
  %t21 = sext i32 %t20 to i64
  %p22 = getelementptr inbounds half, ptr addrspace(1) %b, i64 %t21
  %t23 = load half, ptr addrspace(1) %p22, align 2
  %t24 = fpext half %t23 to float
  %t25 = fadd contract float %t16, %t24
  %t26 = fptrunc float %t25 to half
  %t27 = mul i32 %t0, 288
  %t28 = mul i32 %t1, 128
  %t29 = add i32 %t28, %t2
  %t30 = add i32 %t27, %t29
  %t31 = sext i32 %t30 to i64
  %p32 = getelementptr inbounds half, ptr addrspace(1) %y, i64 %t31
  store half %t26, ptr addrspace(1) %p32, align 2
  br label %endif8
endif8:
  ret void
}

declare i32 @llvm.nvvm.read.ptx.sreg.ctaid.x()
declare i32 @llvm.nvvm.read.ptx.sreg.ctaid.y()
declare i32 @llvm.nvvm.read.ptx.sreg.tid.x()

!0 = distinct !{!0, !1}
!1 = !{!"llvm.loop.unroll.full"}
!nvvm.annotations = !{!2, !3}
!2 = !{ptr @residualAdd, !"kernel", i32 1}
!3 = !{ptr @residualAdd, !"maxntidx", i32 128}
