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
  %t9 = sext i32 %t0 to i64
  %t10 = mul nsw i64 %t9, 288
  %t11 = sext i32 %t1 to i64
  %t12 = mul nsw i64 %t11, 128
  %t13 = sext i32 %t2 to i64
  %t14 = add nsw i64 %t12, %t13
  %t15 = add nsw i64 %t10, %t14
  %p16 = getelementptr inbounds half, ptr addrspace(1) %a, i64 %t15
  %t17 = load half, ptr addrspace(1) %p16, align 2
  %t18 = fpext half %t17 to float
  %t19 = sext i32 %t0 to i64
  %t20 = mul nsw i64 %t19, 288
  %t21 = sext i32 %t1 to i64
  %t22 = mul nsw i64 %t21, 128
  %t23 = sext i32 %t2 to i64
  %t24 = add nsw i64 %t22, %t23
  %t25 = add nsw i64 %t20, %t24
  %p26 = getelementptr inbounds half, ptr addrspace(1) %b, i64 %t25
  %t27 = load half, ptr addrspace(1) %p26, align 2
  %t28 = fpext half %t27 to float
  %t29 = fadd contract float %t18, %t28
  %t30 = fptrunc float %t29 to half
  %t31 = sext i32 %t0 to i64
  %t32 = mul nsw i64 %t31, 288
  %t33 = sext i32 %t1 to i64
  %t34 = mul nsw i64 %t33, 128
  %t35 = sext i32 %t2 to i64
  %t36 = add nsw i64 %t34, %t35
  %t37 = add nsw i64 %t32, %t36
  %p38 = getelementptr inbounds half, ptr addrspace(1) %y, i64 %t37
  store half %t30, ptr addrspace(1) %p38, align 2
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
